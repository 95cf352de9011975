/*! crisiscomms site banner widget, for banner documents "crisiscomms-banner" version 1.
 *
 * Embed with one script element (docs/widget.md):
 *   src="/static/crisiscomms-banner.js" data-banner="/site/banner.json" defer
 *
 * Plain ES2018, no dependencies, no build step. Text from the banner document is only ever
 * set with textContent; links only with setAttribute("href") and only for http(s), tel, sms and
 * mailto. Any problem (no file, bad JSON, unknown format) leaves the page as it was.
 */
(() => {
  'use strict';

  const FORMAT = 'crisiscomms-banner';
  const VERSION = 1;
  const STORE = 'crisiscomms-banner:';
  const SEVERITIES = ['info', 'warning', 'critical'];
  const SAFE_SCHEMES = ['http:', 'https:', 'tel:', 'sms:', 'mailto:'];
  const DAY_KEYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat']; // Date#getUTCDay order
  const ALWAYS_OPEN_KINDS = ['portal', 'web', 'social'];
  const HORIZON_DAYS = 15;
  const LOAD_TIMEOUT_MS = 15000;
  const CSS_TIMEOUT_MS = 3000;

  // Same rules as crisiscomms/locales.py: language_TERRITORY, then language, then a language
  // its readers also read (Norwegian and Nynorsk readers get Bokmål), else the default locale.
  const READABLE_INSTEAD = { no: 'nb', nn: 'nb' };
  const LEGACY_CODES = { iw: 'he', in: 'id', ji: 'yi' };
  const RTL_LANGUAGES = ['ar', 'he', 'fa', 'ur', 'ps', 'sd', 'yi', 'dv', 'ug', 'ckb'];
  const ENDONYMS = {
    en: 'English', sv: 'Svenska', da: 'Dansk', nb: 'Norsk bokmål', nl: 'Nederlands', el: 'Ελληνικά',
  };

  // The widget's own words (severity and person words as the e-mails say them). Locales not listed
  // here get English.
  const WORDS = {
    en: {
      info: 'Information', warning: 'Important', critical: 'Urgent',
      more: 'Show more', less: 'Show less', dismiss: 'Dismiss this notice', language: 'Language',
      reach: 'How to reach us', links: 'Helpful links', updated: 'Updated',
      openNow: 'Open now', closedNow: 'Closed now', open247: 'Open 24/7', available247: 'Available 24/7',
      until: 'until {t}', opens: 'opens {t}', person: 'a person answers', useInstead: 'Use instead:',
      hours: 'Opening hours:', today: 'Today:', closedToday: 'closed',
    },
    sv: {
      info: 'Information', warning: 'Viktigt', critical: 'Akut',
      more: 'Visa mer', less: 'Visa mindre', dismiss: 'Stäng meddelandet', language: 'Språk',
      reach: 'Så når du oss', links: 'Användbara länkar', updated: 'Uppdaterad',
      openNow: 'Öppet nu', closedNow: 'Stängt nu', open247: 'Öppet dygnet runt',
      available247: 'Tillgängligt dygnet runt', until: 'till {t}', opens: 'öppnar {t}',
      person: 'en medarbetare svarar', useInstead: 'Använd i stället:', hours: 'Öppettider:', today: 'I dag:',
      closedToday: 'stängt',
    },
    da: {
      info: 'Information', warning: 'Vigtigt', critical: 'Akut',
      more: 'Vis mere', less: 'Vis mindre', dismiss: 'Luk meddelelsen', language: 'Sprog',
      reach: 'Sådan kontakter du os', links: 'Nyttige links', updated: 'Opdateret',
      openNow: 'Åben nu', closedNow: 'Lukket nu', open247: 'Åben døgnet rundt',
      available247: 'Tilgængelig døgnet rundt', until: 'til {t}', opens: 'åbner {t}',
      person: 'en medarbejder svarer', useInstead: 'Brug i stedet:', hours: 'Åbningstider:', today: 'I dag:',
      closedToday: 'lukket',
    },
    nb: {
      info: 'Informasjon', warning: 'Viktig', critical: 'Akutt',
      more: 'Vis mer', less: 'Vis mindre', dismiss: 'Lukk meldingen', language: 'Språk',
      reach: 'Slik når du oss', links: 'Nyttige lenker', updated: 'Oppdatert',
      openNow: 'Åpent nå', closedNow: 'Stengt nå', open247: 'Åpent døgnet rundt',
      available247: 'Tilgjengelig døgnet rundt', until: 'til {t}', opens: 'åpner {t}',
      person: 'en medarbeider svarer', useInstead: 'Bruk i stedet:', hours: 'Åpningstider:', today: 'I dag:',
      closedToday: 'stengt',
    },
    nl: {
      info: 'Informatie', warning: 'Belangrijk', critical: 'Urgent',
      more: 'Meer tonen', less: 'Minder tonen', dismiss: 'Melding sluiten', language: 'Taal',
      reach: 'Bereikbaarheid', links: 'Handige links', updated: 'Bijgewerkt',
      openNow: 'Nu open', closedNow: 'Nu gesloten', open247: 'Dag en nacht open',
      available247: 'Dag en nacht beschikbaar', until: 'tot {t}', opens: 'opent {t}',
      person: 'een medewerker reageert', useInstead: 'Gebruik in plaats daarvan:',
      hours: 'Openingstijden:', today: 'Vandaag:', closedToday: 'gesloten',
    },
    el: {
      info: 'Ενημέρωση', warning: 'Σημαντικό', critical: 'Επείγον',
      more: 'Περισσότερα', less: 'Λιγότερα', dismiss: 'Κλείσιμο ειδοποίησης', language: 'Γλώσσα',
      reach: 'Πώς θα επικοινωνήσετε μαζί μας', links: 'Χρήσιμοι σύνδεσμοι', updated: 'Ενημερώθηκε',
      openNow: 'Ανοιχτά τώρα', closedNow: 'Κλειστά τώρα', open247: 'Ανοιχτά όλο το 24ωρο',
      available247: 'Διαθέσιμο όλο το 24ωρο', until: 'έως {t}', opens: 'ανοίγει {t}',
      person: 'απαντά συνάδελφός μας', useInstead: 'Εναλλακτικά:', hours: 'Ωράριο:',
      today: 'Σήμερα:', closedToday: 'κλειστά',
    },
  };

  // ---------------------------------------------------------------- locales

  function localeCandidates(tag) {
    const parts = String(tag == null ? '' : tag).trim().split(/[-_]/).filter(Boolean);
    if (!parts.length) return [];
    let language = parts[0].toLowerCase();
    if (!/^[a-z]{2,3}$/.test(language)) return [];
    language = LEGACY_CODES[language] || language;
    let territory = '';
    for (const part of parts.slice(1)) {
      if (/^[a-z]{2}$/i.test(part) || /^[0-9]{3}$/.test(part)) { territory = part.toUpperCase(); break; }
      if (part.length !== 4) break; // a script (Latn, Hant) may come before the territory
    }
    const codes = territory ? [`${language}_${territory}`, `${language}-${territory}`, language] : [language];
    if (READABLE_INSTEAD[language]) codes.push(READABLE_INSTEAD[language]);
    return codes;
  }

  /**
   * The first of ``requested`` (most wanted first) that a supported locale serves, else ``fallback``.
   * Per tag, as crisiscomms/locales.py does: the exact locale or its language, then the same language
   * in another region (en or en-IE → en_GB when there is no en), then the playbook's declared
   * ``locale_fallbacks`` ({de: 'en'}).
   */
  function negotiateLocale(requested, supported, fallback, fallbacks) {
    const declared = isObject(fallbacks) ? fallbacks : {};
    for (const tag of requested || []) {
      const candidates = localeCandidates(tag);
      for (const code of candidates) {
        if (supported.indexOf(code) >= 0) return code;
      }
      for (const code of candidates) {
        const variant = supported.find((s) => s.split(/[-_]/)[0].toLowerCase() === code);
        if (variant) return variant;
      }
      for (const code of candidates) {
        const seen = [code];
        let next = declared[code];
        while (typeof next === 'string' && seen.indexOf(next) < 0) {
          if (supported.indexOf(next) >= 0) return next;
          seen.push(next);
          next = declared[next];
        }
      }
    }
    return fallback;
  }

  function words(locale) {
    const language = String(locale).split(/[-_]/)[0];
    if (WORDS[language]) return { table: WORDS[language], lang: language };
    return { table: WORDS.en, lang: 'en' };
  }

  function endonym(code) {
    return ENDONYMS[code] || code;
  }

  // ---------------------------------------------------------------- opening hours

  function clockMinutes(text) {
    const match = /^(\d{1,2}):(\d{2})$/.exec(String(text));
    if (!match) return null;
    const hours = Number(match[1]);
    const minutes = Number(match[2]);
    if (minutes > 59 || hours > 24 || (hours === 24 && minutes)) return null;
    return hours * 60 + minutes;
  }

  function normaliseRanges(value) {
    if (!Array.isArray(value)) return [];
    const ranges = [];
    for (const pair of value) {
      if (!Array.isArray(pair) || pair.length !== 2) continue;
      const start = clockMinutes(pair[0]);
      const end = clockMinutes(pair[1]);
      if (start === null || end === null || end <= start) continue;
      ranges.push([start, end]);
    }
    return ranges.sort((a, b) => a[0] - b[0]);
  }

  // One end of an exception, local to the route's zone: 2026-12-24, 2026-10-14T06:00, or yearly 12-24[T18:00].
  const BOUND = /^(?:(\d{4})-)?(\d{2})-(\d{2})(?:T(\d{2}:\d{2}))?$/;

  function parseBound(text, start) {
    const match = BOUND.exec(String(text));
    if (!match) return null;
    const minute = match[4] === undefined ? (start ? 0 : 1440) : clockMinutes(match[4]);
    if (minute === null) return null;
    return { year: match[1] || null, key: `${match[2]}-${match[3]}`, minute };
  }

  function normaliseException(exception) {
    if (!isObject(exception)) return null;
    const from = parseBound(exception.from, true);
    const to = parseBound(exception.to, false);
    if (!from || !to || (from.year === null) !== (to.year === null)) return null;
    const yearly = from.year === null;
    return {
      yearly,
      from: yearly ? from.key : `${from.year}-${from.key}`, fromMinute: from.minute,
      to: yearly ? to.key : `${to.year}-${to.key}`, toMinute: to.minute,
      ranges: normaliseRanges(exception.ranges),
      note: exception.note,
    };
  }

  function normaliseHours(hours) {
    if (!isObject(hours) || typeof hours.timezone !== 'string') return null;
    if (!zoneFormatter(hours.timezone)) return null;
    const weekly = {};
    const source = isObject(hours.weekly) ? hours.weekly : {};
    for (const key of DAY_KEYS) weekly[key] = normaliseRanges(source[key]);
    const exceptions = [];
    for (const exception of Array.isArray(hours.exceptions) ? hours.exceptions : []) {
      const normalised = normaliseException(exception);
      if (normalised) exceptions.push(normalised);
    }
    // Same precedence as crisiscomms/hours.py: dated exceptions first, then yearly, each in written order.
    const ordered = exceptions.filter((e) => !e.yearly).concat(exceptions.filter((e) => e.yearly));
    return { timezone: hours.timezone, always: hours.always === true, weekly, exceptions: ordered };
  }

  const zoneFormatters = new Map();

  function zoneFormatter(timeZone) {
    if (!zoneFormatters.has(timeZone)) {
      let formatter = null;
      try {
        formatter = new Intl.DateTimeFormat('en-US', {
          timeZone, year: 'numeric', month: '2-digit', day: '2-digit', weekday: 'short',
          hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
        });
      } catch (error) {
        formatter = null; // an unknown IANA zone: open/closed stays unknown
      }
      zoneFormatters.set(timeZone, formatter);
    }
    return zoneFormatters.get(timeZone);
  }

  /** The local date (YYYY-MM-DD) and minute of the day at ``moment`` in ``timeZone``. */
  function localTime(moment, timeZone) {
    const parts = {};
    for (const part of zoneFormatter(timeZone).formatToParts(moment)) parts[part.type] = part.value;
    const hour = Number(parts.hour) % 24; // some engines say "24" for midnight
    const year = String(parts.year).padStart(4, '0');
    return { date: `${year}-${parts.month}-${parts.day}`, minute: hour * 60 + Number(parts.minute) };
  }

  function addDays(date, days) {
    const [y, m, d] = date.split('-').map(Number);
    return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
  }

  function dayKey(date) {
    const [y, m, d] = date.split('-').map(Number);
    return DAY_KEYS[new Date(Date.UTC(y, m - 1, d)).getUTCDay()];
  }

  /** [start, end) minutes of the local ``date`` that ``exception`` covers, or null. */
  function windowOn(exception, date) {
    const key = exception.yearly ? date.slice(5) : date;
    let inside;
    if (!exception.yearly || exception.from <= exception.to) inside = exception.from <= key && key <= exception.to;
    else inside = key >= exception.from || key <= exception.to; // a yearly period over New Year
    if (!inside) return null;
    const start = key === exception.from ? exception.fromMinute : 0;
    const end = key === exception.to ? exception.toMinute : 1440;
    return start < end ? [start, end] : null;
  }

  function clipRanges(ranges, start, end) {
    const out = [];
    for (const [a, b] of ranges) {
      const low = Math.max(a, start);
      const high = Math.min(b, end);
      if (low < high) out.push([low, high]);
    }
    return out;
  }

  /** ``base`` outside the window, ``replacement`` inside it, joined where they touch. */
  function spliceRanges(base, replacement, [start, end]) {
    const pieces = clipRanges(base, 0, start).concat(clipRanges(base, end, 1440), clipRanges(replacement, start, end));
    pieces.sort((a, b) => a[0] - b[0]);
    const merged = [];
    for (const [a, b] of pieces) {
      const last = merged[merged.length - 1];
      if (last && a <= last[1]) last[1] = Math.max(last[1], b);
      else merged.push([a, b]);
    }
    return merged;
  }

  /** The ranges that apply on a local date: the weekday's, replaced where exceptions apply (the strongest wins). */
  function rangesOn(hours, date) {
    let ranges = hours.weekly[dayKey(date)];
    for (let index = hours.exceptions.length - 1; index >= 0; index--) {
      const window = windowOn(hours.exceptions[index], date);
      if (window) ranges = spliceRanges(ranges, hours.exceptions[index].ranges, window);
    }
    return ranges;
  }

  /** The exception whose hours apply at a local date and minute, else the first touching that date. */
  function exceptionOn(hours, date, minute) {
    let touching = null;
    for (const exception of hours.exceptions) {
      const window = windowOn(exception, date);
      if (!window) continue;
      if (minute === undefined || (window[0] <= minute && minute < window[1])) return exception;
      touching = touching || exception;
    }
    return touching;
  }

  /**
   * Open or closed at ``moment``, computed in the route's own time zone.
   * Returns null when unknown, else {open, always, today, closes: {date, minute} | null,
   * opens: {date, minute} | null}.
   */
  function openState(hours, moment) {
    if (!hours) return null;
    if (hours.always) return { open: true, always: true, today: null, closes: null, opens: null };
    const here = localTime(moment, hours.timezone);
    const periods = [];
    let date = here.date;
    for (let day = 0; day < HORIZON_DAYS; day++) {
      for (const [start, end] of rangesOn(hours, date)) {
        periods.push({ date, start, end, from: day * 1440 + start, to: day * 1440 + end });
      }
      date = addDays(date, 1);
    }
    const index = periods.findIndex((p) => p.from <= here.minute && here.minute < p.to);
    if (index >= 0) {
      let closing = periods[index];
      for (const next of periods.slice(index + 1)) {
        if (next.from > closing.to) break;
        if (next.to > closing.to) closing = next;
      }
      const endless = closing.to >= HORIZON_DAYS * 1440;
      return {
        open: true, always: false, today: here.date, minute: here.minute, opens: null,
        closes: endless ? null : { date: closing.date, minute: closing.end },
      };
    }
    const next = periods.find((p) => p.from > here.minute);
    return {
      open: false, always: false, today: here.date, minute: here.minute, closes: null,
      opens: next ? { date: next.date, minute: next.start } : null,
    };
  }

  // ---------------------------------------------------------------- formatting

  const clockFormats = new Map();

  /** "20:00" the locale's way ("20.00" in Danish); 1440 minutes is "24:00". */
  function formatClock(minute, locale) {
    if (!clockFormats.has(locale)) {
      let format = null;
      try {
        const sample = new Intl.DateTimeFormat(locale, {
          hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: 'UTC',
        }).format(new Date(Date.UTC(2000, 0, 1, 13, 5)));
        const h = sample.indexOf('13');
        const m = sample.indexOf('05');
        if (h >= 0 && m > h) {
          format = [sample.slice(0, h), sample.slice(h + 2, m), sample.slice(m + 2)];
        }
      } catch (error) {
        format = null;
      }
      clockFormats.set(locale, format || ['', ':', '']);
    }
    const [before, between, after] = clockFormats.get(locale);
    const hh = String(Math.floor(minute / 60)).padStart(2, '0');
    const mm = String(minute % 60).padStart(2, '0');
    return `${before}${hh}${between}${mm}${after}`;
  }

  const separators = new Map();

  /** What the locale puts between two times of a range: "–" (sv) or " – " (en), as Babel does for the CLI. */
  function rangeSeparator(locale) {
    if (!separators.has(locale)) {
      let separator = '–';
      try {
        const format = new Intl.DateTimeFormat(locale, {
          hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: 'UTC',
        });
        const from = format.format(new Date(Date.UTC(2000, 0, 1, 8)));
        const to = format.format(new Date(Date.UTC(2000, 0, 1, 20)));
        const range = format.formatRange(new Date(Date.UTC(2000, 0, 1, 8)), new Date(Date.UTC(2000, 0, 1, 20)));
        if (range.startsWith(from) && range.endsWith(to) && range.length > from.length + to.length) {
          separator = range.slice(from.length, range.length - to.length);
        }
      } catch (error) {
        separator = '–'; // no formatRange: the plain dash
      }
      separators.set(locale, separator);
    }
    return separators.get(locale);
  }

  function formatRange(range, locale) {
    return `${formatClock(range[0], locale)}${rangeSeparator(locale)}${formatClock(range[1], locale)}`;
  }

  function formatWeekday(date, locale) {
    const [y, m, d] = date.split('-').map(Number);
    try {
      return new Intl.DateTimeFormat(locale, { weekday: 'short', timeZone: 'UTC' })
        .format(new Date(Date.UTC(y, m - 1, d)));
    } catch (error) {
      return dayKey(date);
    }
  }

  /** The locale's own word for today (0) or tomorrow (1), from Intl (CLDR), or null. */
  function relativeDay(days, locale) {
    try {
      return new Intl.RelativeTimeFormat(locale, { numeric: 'auto' }).format(days, 'day');
    } catch (error) {
      return null; // no RelativeTimeFormat: the weekday instead
    }
  }

  /**
   * "20:00" today (or "today 06:00" with ``sayToday``, for an opening), "tomorrow 18:00" (the
   * locale's own words), else "Sat 10:00".
   */
  function formatWhen(when, today, locale, sayToday) {
    const clock = formatClock(when.minute, locale);
    const days = when.date === today ? 0 : (when.date === addDays(today, 1) && when.minute !== 1440 ? 1 : null);
    if (days === 0 && !sayToday) return clock;
    const word = days === null ? null : relativeDay(days, locale);
    if (word) return `${word} ${clock}`;
    return days === 0 ? clock : `${formatWeekday(when.date, locale)} ${clock}`;
  }

  function formatMoment(moment, locale) {
    try {
      return new Intl.DateTimeFormat(locale, {
        day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
      }).format(moment);
    } catch (error) {
      return moment.toISOString();
    }
  }

  function zoneLabel(timeZone, moment, locale) {
    try {
      const parts = new Intl.DateTimeFormat(locale, { timeZone, timeZoneName: 'short' }).formatToParts(moment);
      const part = parts.find((p) => p.type === 'timeZoneName');
      return part ? part.value : timeZone;
    } catch (error) {
      return timeZone;
    }
  }

  function visitorZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || '';
    } catch (error) {
      return '';
    }
  }

  // ---------------------------------------------------------------- the document

  function isObject(value) {
    return value !== null && typeof value === 'object' && !Array.isArray(value);
  }

  function isText(value) {
    return typeof value === 'string' && value.trim() !== '';
  }

  function textMap(value) {
    if (!isObject(value)) return null;
    const map = {};
    for (const key of Object.keys(value)) if (typeof value[key] === 'string') map[key] = value[key];
    return Object.keys(map).length ? map : null;
  }

  function safeHref(value, base) {
    if (!isText(value)) return null;
    let url;
    try {
      url = new URL(value.trim(), base);
    } catch (error) {
      return null;
    }
    return SAFE_SCHEMES.indexOf(url.protocol) >= 0 ? url.href : null;
  }

  /** Check and tidy a banner document; null when it is not one this widget can show. */
  /** A "no notice" document (crisiscomms banner withdraw, or an all-clear notice): show nothing. */
  function isWithdrawal(raw) {
    return isObject(raw) && raw.format === FORMAT && raw.version === VERSION && raw.notice === null
      && isObject(raw.withdrawn);
  }

  function readDocument(raw, base) {
    if (!isObject(raw) || raw.format !== FORMAT || raw.version !== VERSION) return null;
    const notice = raw.notice;
    if (!isObject(notice) || !isText(notice.id) || SEVERITIES.indexOf(notice.severity) < 0) return null;
    const issued = Date.parse(notice.issued);
    if (Number.isNaN(issued)) return null;
    let expires = null;
    if (notice.expires != null) {
      expires = Date.parse(notice.expires);
      if (Number.isNaN(expires)) return null;
    }
    if (!isObject(raw.locales)) return null;
    const locales = {};
    for (const code of Object.keys(raw.locales)) {
      const text = raw.locales[code];
      if (isObject(text) && isText(text.title) && typeof text.body === 'string') {
        // ``lang``: the locale whose text this is (another one's when the playbook has none of its own).
        locales[code] = { title: text.title, body: text.body, lang: isText(text.lang) ? text.lang : code };
      }
    }
    const codes = Object.keys(locales);
    if (!codes.length) return null;
    const defaultLocale = locales[raw.default_locale] ? raw.default_locale : codes[0];
    const organisation = isObject(raw.organisation) ? raw.organisation : {};
    const localeFallbacks = {};
    for (const [code, target] of Object.entries(isObject(raw.locale_fallbacks) ? raw.locale_fallbacks : {})) {
      if (typeof target === 'string') localeFallbacks[code] = target;
    }

    const routes = {};
    for (const [id, route] of Object.entries(isObject(raw.routes) ? raw.routes : {})) {
      if (!isObject(route)) continue;
      routes[id] = {
        id,
        kind: typeof route.kind === 'string' ? route.kind : '',
        label: textMap(route.label),
        contact: typeof route.contact === 'string' ? route.contact : '',
        href: safeHref(route.href, base),
        livePerson: route.live_person === true,
        hours: normaliseHours(route.hours),
        hoursText: textMap(route.hours_text),
      };
    }
    const inquiries = [];
    for (const inquiry of Array.isArray(raw.inquiries) ? raw.inquiries : []) {
      if (!isObject(inquiry) || !routes[inquiry.best]) continue;
      const fallbacks = Array.isArray(inquiry.fallbacks) ? inquiry.fallbacks.filter((r) => routes[r]) : [];
      inquiries.push({ id: String(inquiry.id), label: textMap(inquiry.label), best: inquiry.best, fallbacks });
    }
    const links = [];
    for (const link of Array.isArray(raw.links) ? raw.links : []) {
      if (!isObject(link)) continue;
      const href = safeHref(link.url, base);
      const title = textMap(link.title);
      if (href && title) links.push({ href, title, kind: String(link.kind || '') });
    }
    return {
      organisation: { name: isText(organisation.name) ? organisation.name : '' },
      notice: { id: notice.id, severity: notice.severity, issued, expires, issuedText: String(notice.issued) },
      defaultLocale: defaultLocale, locales, codes, inquiries, routes, links, localeFallbacks,
    };
  }

  // ---------------------------------------------------------------- storage (may be unavailable)

  function storageGet(enabled, key) {
    if (!enabled) return null;
    try {
      return window.localStorage.getItem(STORE + key);
    } catch (error) {
      return null;
    }
  }

  function storageSet(enabled, key, value) {
    if (!enabled) return;
    try {
      window.localStorage.setItem(STORE + key, value);
    } catch (error) {
      // private mode or a sandboxed frame: remembered for this page view only
    }
  }

  // ---------------------------------------------------------------- DOM helpers (text only)

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  /** "+46 8 465 004 10" never breaks across lines (no-break spaces; still plain text). */
  function keepNumbersTogether(text) {
    return text.replace(/\+\d[\d ]{4,}\d/g, (number) => number.replace(/ /g, '\u00a0'));
  }

  const SVG = 'http://www.w3.org/2000/svg';
  const ICONS = {
    info: ['M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20z', 'M11 10h2v7h-2zM11 6.5h2v2h-2z'],
    warning: ['M12 2.5 1.5 21h21z', 'M11 9h2v6h-2zM11 16.5h2v2h-2z'],
    critical: ['M7.9 2h8.2L22 7.9v8.2L16.1 22H7.9L2 16.1V7.9z', 'M11 6.5h2v7.5h-2zM11 15.5h2v2h-2z'],
    chevron: ['M6.4 8.6 12 14.2l5.6-5.6L19 10l-7 7-7-7z'],
    close: ['M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12l5.6 5.6-1.4 1.4-5.6-5.6L6.4 19 5 17.6 10.6 12 5 6.4z'],
  };

  function icon(name, className) {
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    // Presentation size for a page without the stylesheet (CSS overrides it): never a 300×150 icon.
    svg.setAttribute('width', '20');
    svg.setAttribute('height', '20');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    svg.setAttribute('class', className);
    ICONS[name].forEach((d, i) => {
      const path = document.createElementNS(SVG, 'path');
      path.setAttribute('d', d);
      if (i > 0) path.setAttribute('class', 'ccb-icon-mark');
      svg.appendChild(path);
    });
    return svg;
  }

  // ---------------------------------------------------------------- the banner

  let instances = 0;

  class Banner {
    constructor(doc, options) {
      this.doc = doc;
      this.options = options;
      this.id = `ccb-${++instances}`;
      this.expanded = options.expanded;
      this.dismissKey = `dismissed:${encodeURIComponent(doc.notice.id)}@${doc.notice.issuedText}`;
      this.locale = this.chooseLocale();
      this.root = el('section', `ccb ccb--${doc.notice.severity}`);
      this.root.setAttribute('aria-labelledby', `${this.id}-title`);
      this.root.setAttribute('data-notice', doc.notice.id);
      this.root.addEventListener('keydown', (event) => {
        if (event.key === 'Escape' && this.expanded) {
          this.setExpanded(false);
          this.toggle.focus();
        }
      });
      this.render();
    }

    chooseLocale() {
      const { codes, defaultLocale } = this.doc;
      const saved = storageGet(this.options.storage, 'locale');
      if (saved && codes.indexOf(saved) >= 0) return saved;
      const wanted = [];
      if (this.options.locale) wanted.push(this.options.locale);
      const languages = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language];
      return negotiateLocale(wanted.concat(Array.from(languages || [])), codes, defaultLocale,
        this.doc.localeFallbacks);
    }

    /** The locale of the text shown: the widget's words, dates and lang attribute follow it. */
    get textLocale() {
      const text = this.doc.locales[this.locale];
      return text && text.lang ? text.lang : this.locale;
    }

    word(key) {
      return words(this.textLocale).table[key];
    }

    /** Text of a {locale: text} map in the language of the text shown, falling back like the CLI does. */
    pick(map) {
      if (!map) return null;
      for (const code of [this.textLocale, this.locale, this.doc.defaultLocale]) {
        if (isText(map[code])) return { text: map[code], lang: code };
      }
      const code = Object.keys(map).find((c) => isText(map[c]));
      return code ? { text: map[code], lang: code } : null;
    }

    localized(tag, className, map, fallbackText) {
      const picked = this.pick(map);
      const node = el(tag, className, picked ? picked.text : fallbackText);
      if (picked && picked.lang !== this.textLocale) node.setAttribute('lang', picked.lang.replace('_', '-'));
      return node;
    }

    uiText(tag, className, key) {
      const { table, lang } = words(this.textLocale);
      const node = el(tag, className, table[key]);
      if (lang !== this.textLocale.split(/[-_]/)[0]) node.setAttribute('lang', lang);
      return node;
    }

    render() {
      const { doc, id } = this;
      const severity = doc.notice.severity;
      const text = doc.locales[this.locale];
      const language = this.textLocale.split(/[-_]/)[0].toLowerCase();
      this.root.setAttribute('lang', this.textLocale.replace('_', '-'));
      this.root.setAttribute('dir', RTL_LANGUAGES.indexOf(language) >= 0 ? 'rtl' : 'ltr');
      const hadFocus = this.select && document.activeElement === this.select;

      const bar = el('div', 'ccb__bar');
      const badge = el('span', 'ccb__badge');
      badge.setAttribute('aria-hidden', 'true');
      badge.append(icon(severity, 'ccb__icon'), this.uiText('span', 'ccb__severity', severity));

      const title = el('p', 'ccb__title');
      title.id = `${id}-title`;
      title.setAttribute('role', severity === 'critical' ? 'alert' : 'status');
      const spoken = this.uiText('span', 'ccb-sr', severity);
      spoken.textContent += ': ';
      title.append(spoken, el('span', 'ccb__title-text', text.title));

      const controls = el('div', 'ccb__controls');
      this.select = null;
      if (doc.codes.length > 1) {
        const label = this.uiText('label', 'ccb-sr', 'language');
        label.htmlFor = `${id}-lang`;
        const select = el('select', 'ccb__lang');
        select.id = `${id}-lang`;
        for (const code of doc.codes) {
          const option = el('option', null, endonym(code));
          option.value = code;
          option.setAttribute('lang', code.replace('_', '-'));
          option.selected = code === this.locale;
          select.appendChild(option);
        }
        select.addEventListener('change', () => this.setLocale(select.value));
        controls.append(label, select);
        this.select = select;
      }
      const toggle = el('button', 'ccb__toggle');
      toggle.type = 'button';
      toggle.setAttribute('aria-controls', `${id}-panel`);
      toggle.append(el('span', 'ccb__toggle-text'), icon('chevron', 'ccb__chevron'));
      toggle.addEventListener('click', () => this.setExpanded(!this.expanded));
      controls.appendChild(toggle);
      this.toggle = toggle;

      const dismiss = el('button', 'ccb__dismiss');
      dismiss.type = 'button';
      dismiss.setAttribute('aria-label', this.word('dismiss'));
      dismiss.title = this.word('dismiss');
      dismiss.appendChild(icon('close', 'ccb__close'));
      dismiss.addEventListener('click', () => this.dismiss());

      bar.append(badge, title, controls, dismiss);

      const panel = el('div', 'ccb__panel');
      panel.id = `${id}-panel`;
      const inner = el('div', 'ccb__inner');
      inner.appendChild(el('p', 'ccb__body', keepNumbersTogether(text.body)));
      this.reach = el('div', 'ccb__reach-wrap');
      inner.appendChild(this.reach);
      if (doc.links.length) {
        inner.appendChild(this.uiText('h2', 'ccb__heading', 'links'));
        const list = el('ul', 'ccb__links');
        for (const link of doc.links) {
          const item = el('li');
          const anchor = this.localized('a', 'ccb__link', link.title, link.href);
          anchor.setAttribute('href', link.href);
          item.appendChild(anchor);
          list.appendChild(item);
        }
        inner.appendChild(list);
      }
      const meta = el('p', 'ccb__meta');
      const updated = `${this.word('updated')} ${formatMoment(new Date(doc.notice.issued), this.textLocale.replace('_', '-'))}`;
      meta.textContent = doc.organisation.name ? `${doc.organisation.name} · ${updated}` : updated;
      inner.appendChild(meta);
      panel.appendChild(inner);
      this.panel = panel;

      this.root.replaceChildren(bar, panel);
      this.setExpanded(this.expanded);
      this.renderReach(true);
      if (hadFocus && this.select) this.select.focus();
    }

    setExpanded(expanded) {
      this.expanded = expanded;
      this.toggle.setAttribute('aria-expanded', String(expanded));
      this.toggle.querySelector('.ccb__toggle-text').textContent = this.word(expanded ? 'less' : 'more');
      this.panel.hidden = !expanded;
      this.root.classList.toggle('ccb--expanded', expanded);
    }

    setLocale(code) {
      if (this.doc.codes.indexOf(code) < 0 || code === this.locale) return;
      this.locale = code;
      storageSet(this.options.storage, 'locale', code);
      this.render();
    }

    /** The "how to reach us" list, computed for the current moment (rebuilt only when something changed). */
    renderReach(force) {
      const moment = this.options.now();
      const locale = this.textLocale.replace('_', '-');
      const states = {};
      for (const id of Object.keys(this.doc.routes)) {
        states[id] = openState(this.doc.routes[id].hours, moment);
      }
      const signature = JSON.stringify([this.locale, states]);
      if (!force && signature === this.reachSignature) return;
      this.reachSignature = signature;
      // Keep keyboard focus on the same link when the list is rebuilt by the minute timer.
      const focused = this.reach.contains(document.activeElement) ? document.activeElement : null;
      const focusPath = focused && focused.closest('[data-route]')
        ? [focused.closest('[data-inquiry]').getAttribute('data-inquiry'),
          focused.closest('[data-route]').getAttribute('data-route')]
        : null;
      const isOpen = (id) => Boolean(states[id] && states[id].open);
      const content = [];
      if (this.doc.inquiries.length) {
        content.push(this.uiText('h2', 'ccb__heading', 'reach'));
        const list = el('ul', 'ccb__reach');
        for (const inquiry of this.doc.inquiries) {
          const item = el('li', 'ccb__inquiry');
          item.setAttribute('data-inquiry', inquiry.id);
          item.appendChild(this.localized('h3', 'ccb__inquiry-label', inquiry.label, inquiry.id));
          const alternative = isOpen(inquiry.best) ? null : inquiry.fallbacks.find(isOpen);
          if (alternative) {
            item.appendChild(this.routeBlock(inquiry.best, states[inquiry.best], moment, locale, true));
            item.appendChild(this.uiText('p', 'ccb__instead', 'useInstead'));
            item.appendChild(this.routeBlock(alternative, states[alternative], moment, locale, false, 'fallback'));
          } else {
            item.appendChild(this.routeBlock(inquiry.best, states[inquiry.best], moment, locale, false, 'best'));
          }
          list.appendChild(item);
        }
        content.push(list);
      }
      this.reach.replaceChildren(...content);
      if (focused) {
        const again = focusPath && this.reach.querySelector(
          `[data-inquiry="${CSS.escape(focusPath[0])}"] [data-route="${CSS.escape(focusPath[1])}"] a`);
        (again || this.toggle).focus();
      }
    }

    routeBlock(routeId, state, moment, locale, brief, role) {
      const route = this.doc.routes[routeId];
      const block = el('div', `ccb__route${brief ? ' ccb__route--closed-best' : ''}`);
      block.setAttribute('data-route', routeId);
      if (role) block.setAttribute('data-role', role);
      if (state) block.setAttribute('data-open', String(state.open));

      const name = el('p', 'ccb__route-name');
      const label = this.localized(route.href && !brief ? 'a' : 'span', 'ccb__route-label', route.label,
        route.contact || route.id);
      if (route.href && !brief) label.setAttribute('href', route.href);
      name.appendChild(label);
      if (route.contact && route.label && ['phone', 'sms'].indexOf(route.kind) >= 0) {
        const contact = el('span', 'ccb__contact', route.contact);
        contact.setAttribute('dir', 'ltr');
        name.append(' ', contact);
      }
      block.appendChild(name);

      if (state) {
        const status = el('p', `ccb__state ccb__state--${state.open ? 'open' : 'closed'}`);
        const parts = [];
        if (state.always) {
          parts.push(this.word(ALWAYS_OPEN_KINDS.indexOf(route.kind) >= 0 ? 'available247' : 'open247'));
        } else if (state.open) {
          parts.push(this.word('openNow'));
          if (state.closes) parts.push(this.word('until').replace('{t}', formatWhen(state.closes, state.today, locale)));
        } else {
          parts.push(this.word('closedNow'));
          if (state.opens) parts.push(this.word('opens').replace('{t}', formatWhen(state.opens, state.today, locale, true)));
        }
        let sentence = parts.join(', ');
        if (route.livePerson && state.open) sentence += ` – ${this.word('person')}`;
        status.append(el('span', 'ccb__dot'), el('span', null, sentence));
        status.firstChild.setAttribute('aria-hidden', 'true');
        block.appendChild(status);
      }

      if (!brief && route.hours && !route.hours.always) {
        const hoursLine = el('p', 'ccb__hours');
        hoursLine.append(this.uiText('span', 'ccb__hours-label', 'hours'), ' ');
        const hoursText = this.localized('span', null, route.hoursText, '');
        if (route.hours.timezone !== visitorZone()) {
          hoursText.textContent += ` (${zoneLabel(route.hours.timezone, moment, locale)})`;
        }
        hoursLine.appendChild(hoursText);
        block.appendChild(hoursLine);
        const today = state && state.today ? exceptionOn(route.hours, state.today, state.minute) : null;
        if (today) {
          // Today's hours as they apply (weekly hours with the exception's part spliced in), and why.
          const special = el('p', 'ccb__hours ccb__hours--today');
          const ranges = rangesOn(route.hours, state.today).map((r) => formatRange(r, locale));
          special.append(this.uiText('span', 'ccb__hours-label', 'today'), ' ',
            ranges.length ? ranges.join(', ') : this.word('closedToday'));
          const note = textMap(today.note);
          if (note) special.append(' – ', this.localized('span', 'ccb__note', note, ''));
          block.appendChild(special);
        }
      }
      return block;
    }

    dismiss() {
      storageSet(this.options.storage, this.dismissKey, '1');
      this.remove('dismissed');
    }

    isDismissed() {
      return storageGet(this.options.storage, this.dismissKey) === '1';
    }

    remove(state) {
      if (this.timer) window.clearInterval(this.timer);
      if (this.root.parentNode) this.root.parentNode.removeChild(this.root);
      this.options.report(state);
    }

    /** Re-check open/closed and expiry (every minute, and when the page becomes visible again). */
    tick() {
      if (!this.root.parentNode) return;
      const { expires } = this.doc.notice;
      if (expires !== null && this.options.now().getTime() >= expires) {
        this.remove('expired');
        return;
      }
      this.renderReach();
    }
  }

  // ---------------------------------------------------------------- start-up

  function fetchDocument(url) {
    const controller = typeof AbortController === 'function' ? new AbortController() : null;
    const timer = controller ? window.setTimeout(() => controller.abort(), LOAD_TIMEOUT_MS) : 0;
    return fetch(url, { cache: 'no-cache', credentials: 'same-origin', signal: controller ? controller.signal : undefined })
      .then((response) => (response.ok ? response.json() : null))
      .finally(() => window.clearTimeout(timer));
  }

  function loadStylesheet(script) {
    const wanted = script.getAttribute('data-css');
    if (wanted === 'none' || (!wanted && !script.src)) return Promise.resolve();
    let href;
    try {
      href = new URL(wanted || 'crisiscomms-banner.css', wanted ? document.baseURI : script.src).href;
    } catch (error) {
      return Promise.resolve();
    }
    if (Array.from(document.querySelectorAll('link[rel="stylesheet"]')).some((l) => l.href === href)) {
      return Promise.resolve();
    }
    const link = document.createElement('link');
    link.rel = 'stylesheet';
    link.setAttribute('href', href);
    link.setAttribute('data-crisiscomms-banner', '');
    return new Promise((resolve) => {
      const timer = window.setTimeout(resolve, CSS_TIMEOUT_MS);
      const done = () => { window.clearTimeout(timer); resolve(); };
      link.addEventListener('load', done);
      link.addEventListener('error', done);
      document.head.appendChild(link);
    });
  }

  function domReady() {
    if (document.readyState !== 'loading') return Promise.resolve();
    return new Promise((resolve) => document.addEventListener('DOMContentLoaded', resolve, { once: true }));
  }

  function start(script) {
    const report = (state) => {
      script.setAttribute('data-crisiscomms-state', state);
      try {
        document.dispatchEvent(new CustomEvent('crisiscomms-banner', { detail: { state } }));
      } catch (error) {
        // very old browsers: the attribute is enough
      }
    };
    report('loading');
    const fixedNow = Date.parse(script.getAttribute('data-now') || '');
    const now = Number.isNaN(fixedNow) ? () => new Date() : () => new Date(fixedNow);
    const options = {
      now,
      report,
      locale: script.getAttribute('data-locale') || '',
      storage: script.getAttribute('data-storage') !== 'none',
      expanded: script.getAttribute('data-expanded') === 'true',
    };
    const inline = script.getAttribute('data-banner-inline');
    const source = script.getAttribute('data-banner');
    let base = document.baseURI;
    let loading;
    if (inline) {
      loading = domReady().then(() => {
        const holder = document.getElementById(inline.replace(/^#/, ''));
        return holder ? JSON.parse(holder.textContent) : null;
      });
    } else if (source) {
      base = new URL(source, document.baseURI).href;
      loading = fetchDocument(base);
    } else {
      report('none');
      return;
    }
    Promise.all([loading, loadStylesheet(script), domReady()])
      .then(([raw]) => {
        if (isWithdrawal(raw)) { report('withdrawn'); return; }
        const doc = readDocument(raw, base);
        if (!doc) { report('none'); return; }
        if (doc.notice.expires !== null && now().getTime() >= doc.notice.expires) { report('expired'); return; }
        const banner = new Banner(doc, options);
        if (banner.isDismissed()) { report('dismissed'); return; }
        const targetId = script.getAttribute('data-target');
        const target = (targetId && document.getElementById(targetId.replace(/^#/, ''))) || document.body;
        target.insertBefore(banner.root, target.firstChild);
        report('shown');
        if (Number.isNaN(fixedNow)) {
          banner.timer = window.setInterval(() => banner.tick(), 60000);
          const left = doc.notice.expires === null ? Infinity : doc.notice.expires - Date.now();
          if (left < 2147483647) window.setTimeout(() => banner.tick(), left + 50); // hide on the dot
          document.addEventListener('visibilitychange', () => {
            if (document.visibilityState === 'visible') banner.tick();
          });
        }
      })
      .catch(() => report('none'));
  }

  const api = Object.freeze({ version: VERSION, negotiateLocale, openState: (hours, moment) =>
    openState(normaliseHours(hours), moment instanceof Date ? moment : new Date(moment)) });
  const script = document.currentScript
    || document.querySelector('script[data-banner],script[data-banner-inline]');
  try {
    if (!window.CrisiscommsBanner) {
      Object.defineProperty(window, 'CrisiscommsBanner', { value: api, configurable: true });
    }
    if (script) start(script);
  } catch (error) {
    if (script) script.setAttribute('data-crisiscomms-state', 'none'); // never break the page
  }
})();
