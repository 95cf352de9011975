"""Realistic synthetic audiences for ``crisiscomms send`` benchmarks (CSV, streamed to disk).

    python bench/make_audience.py OUT.csv --rows 1000000 [--seed 42] [--suppress OUT.txt] [--clean]

Deterministic: the same ``--rows``/``--seed``/``--clean`` always give the same bytes.

What a row can look like (the default, "realistic" mix):

* people from SE (most), NO, DK, NL, GR and GB, with names in their own script
  (Greek names in Greek), now and then "Last, First" (a quoted comma);
* phone numbers in many spellings: ``070-123 45 67``, ``0701234567``,
  ``+46 70 123 45 67``, ``0046 70 123 45 67``, ``+46 (0)70 123 45 67``,
  ``+47 412 34 567``, ``0031 6 1234 5678``, ``+44 (0)7700 900123`` ... all in
  ranges ``phonenumbers`` accepts as mobile (or DK's fixed-line-or-mobile);
  every person's number is unique (an affine permutation of the row index);
* about 3% invalid numbers, about 2% fixed lines, about 7% without a phone;
* e-mails in mixed case, about 12% missing and about 1% invalid;
* about 2% duplicates: an earlier person again, with another phone spelling,
  another e-mail case and another customer id;
* locales in every spelling (``sv-SE``, ``sv_FI``, ``SV``, ``nb-NO``, ``no``,
  ``da``, ``nl_BE``, ``el-GR``, ``en``, ``pt-BR``, empty ...), IANA time zones
  (often empty, sometimes lower-case, rarely unknown), a ``channels`` consent
  column that is mostly empty and an extra ``postcode`` column.

``--clean``: every row a distinct person with a valid mobile number and a
valid e-mail, no consent restriction (spellings, locales and time zones still
mixed): for send benchmarks where N rows must mean N SMS / N e-mails.

``--suppress FILE`` writes an opt-out list beside it: about ``--suppress-rate``
of the people (phone in another spelling, or e-mail in another case), plus
comments, blank lines, a few addresses not in the audience and one entry that
is neither a phone number nor an e-mail address.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import time
import unicodedata
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

GENERATOR_VERSION = 3  # bump when the output changes (the bench caches generated files by it)

COLUMNS = ("id", "name", "phone", "email", "locale", "timezone", "channels", "postcode")

# --------------------------------------------------------------------------- countries


@dataclass(frozen=True)
class Country:
    code: str  # ISO region
    calling: str  # country calling code
    weight: float
    mobile_prefixes: tuple[str, ...]  # national significant number prefixes, all mobile
    mobile_free: int  # digits after the prefix
    fixed: tuple[tuple[str, int], ...]  # (prefix, free digits) of fixed lines
    timezone: str
    locales: tuple[tuple[str, float], ...]
    first: tuple[tuple[str, str], ...]  # (as written, ASCII for the e-mail)
    last: tuple[tuple[str, str], ...]
    domains: tuple[str, ...]


def _ascii(names: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """Names with their ASCII e-mail spelling (å→a, ø→o, æ→ae)."""
    out = []
    for name in names:
        folded = name.lower().replace("æ", "ae").replace("ø", "o").replace("ß", "ss")
        folded = unicodedata.normalize("NFKD", folded).encode("ascii", "ignore").decode()
        out.append((name, folded.replace(" ", "").replace("'", "")))
    return tuple(out)


COUNTRIES: tuple[Country, ...] = (
    Country(
        "SE", "46", 0.55, ("70", "72", "73", "76", "79"), 7, (("8", 8), ("31", 7), ("40", 7)),
        "Europe/Stockholm",
        (("sv-SE", 30), ("sv", 25), ("SV", 5), ("sv_SE", 5), ("sv-se", 3), ("sv_FI", 3), ("en", 12),
         ("", 10), ("ar", 2), ("fi", 2), ("pt-BR", 1), ("de", 2)),
        _ascii(["Anna", "Erik", "Maria", "Lars", "Karin", "Johan", "Elin", "Mikael", "Sofia", "Anders",
                "Åsa", "Björn", "Linnéa", "Göran", "Ingrid", "Oskar", "Fatima", "Ahmed", "Sara", "Per"]),
        _ascii(["Lindqvist", "Johansson", "Andersson", "Karlsson", "Nilsson", "Eriksson", "Larsson",
                "Olsson", "Persson", "Svensson", "Gustafsson", "Pettersson", "Jönsson", "Åberg", "Ström",
                "Öberg", "Berg", "Lundgren", "Ali", "Hussein"]),
        ("example.se", "mail.example.se", "bredband.example.se", "webmail.example.com"),
    ),
    Country(
        "NO", "47", 0.10, ("40", "41", "46", "47", "48", "90", "91", "92", "93", "94", "95", "97", "98"),
        6, (("22", 6), ("23", 6)), "Europe/Oslo",
        (("nb-NO", 35), ("no", 20), ("nb", 15), ("NO", 5), ("nn", 5), ("nb_NO", 5), ("en", 10), ("", 5)),
        _ascii(["Ole", "Kari", "Ola", "Ingrid", "Håkon", "Sigrid", "Bjørn", "Solveig", "Magnus", "Ragnhild"]),
        _ascii(["Nordmann", "Nilsen", "Hansen", "Johansen", "Olsen", "Larsen", "Bakken", "Haugen",
                "Sørensen", "Dahl"]),
        ("example.no", "online.example.no", "webmail.example.com"),
    ),
    Country(
        "DK", "45", 0.08, ("26", "27", "28"), 6, (), "Europe/Copenhagen",
        (("da", 40), ("da-DK", 25), ("DA", 5), ("da_DK", 5), ("en", 15), ("", 10)),
        _ascii(["Mette", "Søren", "Jens", "Lone", "Anders", "Rasmus", "Freja", "Mads", "Ida", "Niels"]),
        _ascii(["Hansen", "Jensen", "Nielsen", "Pedersen", "Andersen", "Christensen", "Sørensen",
                "Rasmussen", "Jørgensen", "Madsen"]),
        ("example.dk", "mail.example.dk", "webmail.example.com"),
    ),
    Country(
        "NL", "31", 0.08, ("61", "62", "63", "64", "65", "68"), 7, (("20", 7), ("10", 7)),
        "Europe/Amsterdam",
        (("nl", 30), ("nl-NL", 25), ("nl_BE", 15), ("NL", 5), ("nl_NL", 5), ("en", 15), ("", 5)),
        _ascii(["Sanne", "Pieter", "Daan", "Emma", "Bram", "Lotte", "Jan", "Femke", "Thijs", "Anouk"]),
        _ascii(["de Vries", "Janssen", "de Jong", "Bakker", "Visser", "Smit", "Meijer", "van Dijk",
                "Mulder", "Peeters"]),
        ("example.nl", "example.be", "webmail.example.com"),
    ),
    Country(
        "GR", "30", 0.07, ("690", "693", "694", "695", "697", "698", "699"), 7, (("210", 7), ("2310", 6)),
        "Europe/Athens",
        (("el-GR", 35), ("el", 30), ("EL", 5), ("el_GR", 10), ("en", 15), ("", 5)),
        (("Νίκος", "nikos"), ("Μαρία", "maria"), ("Γιώργος", "giorgos"), ("Ελένη", "eleni"),
         ("Δημήτρης", "dimitris"), ("Κατερίνα", "katerina"), ("Κώστας", "kostas"), ("Σοφία", "sofia")),
        (("Παπαδόπουλος", "papadopoulos"), ("Κωνσταντίνου", "konstantinou"), ("Γεωργίου", "georgiou"),
         ("Νικολάου", "nikolaou"), ("Παππάς", "pappas"), ("Οικονόμου", "oikonomou")),
        ("example.gr", "mail.example.gr", "webmail.example.com"),
    ),
    Country(
        "GB", "44", 0.07, ("74", "75", "78"), 8, (("207", 7), ("208", 7), ("161", 7)), "Europe/London",
        (("en", 50), ("en-GB", 25), ("en_GB", 10), ("EN", 5), ("pt-BR", 3), ("", 7)),
        _ascii(["James", "Olivia", "Oliver", "Amelia", "Harry", "Isla", "George", "Emily", "Noah", "Ava"]),
        _ascii(["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans", "Thomas", "O'Brien",
                "Patel"]),
        ("example.co.uk", "mail.example.co.uk", "webmail.example.com"),
    ),
)

OTHER_TIMEZONES = ("Europe/Helsinki", "Europe/Brussels", "Europe/Berlin", "America/New_York")
UNKNOWN_TIMEZONES = ("Europe/Gothenburg", "CET+1", "Stockholm")
INVALID_PHONES = ("12345", "070-123 45", "+46 70 123", "+46 70 123 45 67 89", "0000000", "n/a", "-",
                  "+46 70 123 45 6x", "ring mig", "+47 123", "0046", "+31 6 1234")
INVALID_EMAILS = ("{local}@", "{local} {local}@{domain}", "no-email-here", "{local}@@{domain}",
                  "{local}@{host}", "@{domain}", "{local}.@{domain}")
CONSENT = (("sms", 4), ("email", 2), ("sms;email", 1.5), ("email;sms", 0.5))

# Large primes for the per-country affine permutation of row index → subscriber number.
_MULTIPLIER = 48_271_957
_OFFSETS = {"SE": 1_234_567, "NO": 765_431, "DK": 97_531, "NL": 3_141_592, "GR": 2_718_281, "GB": 1_618_033}


def _space(country: Country) -> int:
    return len(country.mobile_prefixes) * int(10**country.mobile_free)


def mobile_nsn(country: Country, index: int) -> str:
    """A mobile national significant number, unique per ``index`` within a country."""
    space = _space(country)
    value = (_MULTIPLIER * index + _OFFSETS[country.code]) % space
    prefix, rest = divmod(value, int(10**country.mobile_free))
    return country.mobile_prefixes[prefix] + str(rest).zfill(country.mobile_free)


# --------------------------------------------------------------------------- phone spellings


def _groups(digits: str, sizes: Sequence[int], sep: str = " ") -> str:
    out, at = [], 0
    for size in sizes:
        if at >= len(digits):
            break
        out.append(digits[at : at + size])
        at += size
    if at < len(digits):
        out.append(digits[at:])
    return sep.join(out)


def _se(nsn: str, rng: random.Random) -> str:
    area, rest = nsn[:2], nsn[2:]
    local = _groups(rest, (3, 2, 2))
    return rng.choices(
        [f"0{area}-{local}", f"0{nsn}", f"0{area} {local}", f"0{area}-{rest}", f"+46 {area} {local}",
         f"+46{nsn}", f"0046{nsn}", f"0046 {area} {local}", f"+46 (0){area} {local}",
         f"0{area}.{_groups(rest, (3, 2, 2), '.')}", f"+46-{area}-{_groups(rest, (3, 2, 2), '-')}", f"46{nsn}"],
        weights=[22, 14, 12, 5, 18, 10, 4, 3, 3, 2, 2, 1],
    )[0]


def _international(country: Country, nsn: str, rng: random.Random) -> str:
    cc = country.calling
    code = country.code
    if code == "SE":
        return _se(nsn, rng)
    if code == "NO":
        pretty = _groups(nsn, (3, 2, 3))
        pairs = _groups(nsn, (2, 2, 2, 2))
    elif code == "DK":
        pretty = pairs = _groups(nsn, (2, 2, 2, 2))
    elif code == "NL":
        pretty, pairs = f"{nsn[0]} {nsn[1:]}", f"{nsn[0]} {_groups(nsn[1:], (4, 4))}"
    elif code == "GR":
        pretty, pairs = _groups(nsn, (3, 3, 4)), _groups(nsn, (2, 4, 4))
    else:  # GB
        pretty, pairs = _groups(nsn, (4, 6)), _groups(nsn, (2, 4, 4))
    options = [f"+{cc} {pretty}", f"+{cc}{nsn}", f"00{cc} {pretty}", f"+{cc} {pairs}", f"00{cc}{nsn}"]
    weights = [40, 25, 10, 15, 5]
    if code in ("NL", "GB"):
        options.append(f"+{cc} (0){pretty}")
        weights.append(5)
    return rng.choices(options, weights=weights)[0]


def phone_spelling(country: Country, nsn: str, rng: random.Random) -> str:
    return _international(country, nsn, rng)


def fixed_line(country: Country, rng: random.Random) -> str | None:
    if not country.fixed:
        return None
    prefix, free = rng.choice(country.fixed)
    nsn = prefix + "".join(rng.choice("123456789") for _ in range(free))
    if country.code == "SE":
        return rng.choice([f"0{prefix}-{_groups(nsn[len(prefix):], (3, 3, 2))}", f"+46 {prefix} {nsn[len(prefix):]}"])
    return f"+{country.calling} {prefix} {nsn[len(prefix):]}"


# --------------------------------------------------------------------------- people


@dataclass
class Person:
    index: int
    country: Country
    first: tuple[str, str]
    last: tuple[str, str]
    nsn: str | None  # mobile, None: no mobile
    email_local: str | None
    domain: str
    locale: str
    timezone: str
    postcode: str


@dataclass
class Stats:
    rows: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    countries: Counter[str] = field(default_factory=Counter)
    suppressed: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"rows": self.rows, "kinds": dict(self.kinds), "countries": dict(self.countries),
                "suppress_entries": self.suppressed}


def _weighted(pairs: Sequence[tuple[str, float]]) -> Callable[[random.Random], str]:
    values = [v for v, _ in pairs]
    cumulative, total = [], 0.0
    for _, weight in pairs:
        total += weight
        cumulative.append(total)

    def pick(rng: random.Random) -> str:
        return rng.choices(values, cum_weights=cumulative)[0]

    return pick


_COUNTRY_PICK = _weighted([(c.code, c.weight) for c in COUNTRIES])
_BY_CODE = {c.code: c for c in COUNTRIES}
_LOCALE_PICK = {c.code: _weighted(c.locales) for c in COUNTRIES}
_CONSENT_PICK = _weighted(CONSENT)


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def new_person(index: int, rng: random.Random, *, clean: bool) -> Person:
    country = _BY_CODE[_COUNTRY_PICK(rng)]
    first, last = rng.choice(country.first), rng.choice(country.last)
    locale = _LOCALE_PICK[country.code](rng)
    draw = rng.random()
    if draw < 0.45:
        timezone = ""
    elif draw < 0.47:
        timezone = country.timezone.lower()
    elif draw < 0.49:
        timezone = rng.choice(OTHER_TIMEZONES)
    elif draw < 0.492 and not clean:
        timezone = rng.choice(UNKNOWN_TIMEZONES)
    else:
        timezone = "Europe/Brussels" if locale == "nl_BE" else country.timezone
    separator = rng.choice((".", ".", "_", ""))
    local = f"{first[1]}{separator}{last[1]}.{_base36(index)}"
    return Person(index, country, first, last, mobile_nsn(country, index), local, rng.choice(country.domains),
                  locale, timezone, f"{rng.randrange(10000, 99999)}")


def _display_name(person: Person, rng: random.Random) -> str:
    first, last = person.first[0], person.last[0]
    draw = rng.random()
    if draw < 0.01:
        return f"{last}, {first}"  # a quoted comma in the CSV
    if draw < 0.015:
        return f"{first} {last}".upper()
    if draw < 0.02:
        return f'{first} "{first[:3]}" {last}'
    return f"{first} {last}"


def _email_case(local: str, domain: str, rng: random.Random) -> str:
    draw = rng.random()
    if draw < 0.78:
        return f"{local}@{domain}"
    if draw < 0.90:
        return f"{'.'.join(p[:1].upper() + p[1:] for p in local.split('.'))}@{domain}"
    if draw < 0.95:
        return f"{local}@{domain}".upper()
    return f"{local}@{domain.upper()}"


def _invalid_email(person: Person, rng: random.Random) -> str:
    local = person.email_local or "x"
    return rng.choice(INVALID_EMAILS).format(local=local, domain=person.domain, host=person.domain.split(".")[0])


def row_for(person: Person, rng: random.Random, stats: Stats, *, clean: bool, duplicate: bool) -> list[str]:
    """One CSV row for ``person`` (a fresh draw of spellings every time)."""
    country = person.country
    draw = rng.random()
    if clean or duplicate:
        assert person.nsn is not None
        phone = phone_spelling(country, person.nsn, rng)
    elif draw < 0.03:
        phone = rng.choice(INVALID_PHONES)
        stats.kinds["phone_invalid"] += 1
    elif draw < 0.05 and country.fixed:
        phone = fixed_line(country, rng) or ""
        stats.kinds["phone_fixed_line"] += 1
    elif draw < 0.12:
        phone = ""
        stats.kinds["phone_missing"] += 1
    else:
        assert person.nsn is not None
        phone = phone_spelling(country, person.nsn, rng)
    draw = rng.random()
    if clean or duplicate:
        email = _email_case(person.email_local or "x", person.domain, rng)
    elif draw < 0.12:
        email = ""
        stats.kinds["email_missing"] += 1
    elif draw < 0.13:
        email = _invalid_email(person, rng)
        stats.kinds["email_invalid"] += 1
    else:
        email = _email_case(person.email_local or "x", person.domain, rng)
    channels = ""
    if not clean and rng.random() < 0.08:
        channels = _CONSENT_PICK(rng)
        stats.kinds["channels_restricted"] += 1
    row_id = f"c-{person.index + 1:07d}" if not duplicate else f"c-{9_000_000 + stats.rows:07d}"
    if not clean and rng.random() < 0.01:
        row_id = ""
    name = _display_name(person, rng)
    if duplicate and rng.random() < 0.3:
        name = name.upper()
    return [row_id, name, phone, email, person.locale, person.timezone, channels, person.postcode]


# --------------------------------------------------------------------------- suppression


def suppression_entry(person: Person, rng: random.Random) -> str:
    """The person's phone (in another spelling) or e-mail (in another case)."""
    if person.nsn is not None and (person.email_local is None or rng.random() < 0.6):
        return phone_spelling(person.country, person.nsn, rng)
    return f"{person.email_local}@{person.domain}".swapcase() if rng.random() < 0.5 else \
        f"{person.email_local}@{person.domain}"


# --------------------------------------------------------------------------- main


def generate(path: Path, rows: int, *, seed: int = 42, clean: bool = False, suppress: Path | None = None,
             suppress_rate: float = 0.01, duplicate_rate: float = 0.02) -> Stats:
    """Write ``rows`` audience rows to ``path`` (and an opt-out list to ``suppress``); atomic."""
    rng = random.Random(f"{seed}:{rows}:{clean}")
    stats = Stats()
    recent: deque[Person] = deque(maxlen=5000)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp_suppress = suppress.with_name(suppress.name + f".tmp{os.getpid()}") if suppress else None
    next_index = 0
    with open(tmp, "w", encoding="utf-8", newline="", buffering=1 << 20) as out, \
            (open(tmp_suppress, "w", encoding="utf-8", buffering=1 << 16) if tmp_suppress else open(os.devnull, "w")) \
            as opt_out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        opt_out.write("# Customers who asked never to get SMS or e-mail from us\n"
                      "# one phone number or e-mail address per line\n\n")
        while stats.rows < rows:
            duplicate = (not clean) and len(recent) > 100 and rng.random() < duplicate_rate
            if duplicate:
                person = recent[rng.randrange(len(recent))]
                stats.kinds["duplicate"] += 1
            else:
                person = new_person(next_index, rng, clean=clean)
                next_index += 1
                recent.append(person)
                stats.countries[person.country.code] += 1
            writer.writerow(row_for(person, rng, stats, clean=clean, duplicate=duplicate))
            stats.rows += 1
            if tmp_suppress is not None and not duplicate and rng.random() < suppress_rate:
                opt_out.write(suppression_entry(person, rng) + "\n")
                stats.suppressed += 1
                if rng.random() < 0.01:
                    opt_out.write("\n# added by the contact centre\n")
        if tmp_suppress is not None:
            for number in ("+46 70 000 00 01", "+47 900 00 001", "nobody@example.invalid", "call me maybe"):
                opt_out.write(number + "\n")
    os.replace(tmp, path)
    if suppress is not None and tmp_suppress is not None:
        os.replace(tmp_suppress, suppress)
    return stats


def self_check(samples: int = 400, seed: int = 7) -> None:
    """Every spelling of every country parses as the intended mobile; invalid ones do not; fixed lines are fixed."""
    import phonenumbers
    from phonenumbers import PhoneNumberType as T

    rng = random.Random(seed)
    for country in COUNTRIES:
        for _ in range(samples):
            nsn = mobile_nsn(country, rng.randrange(1_000_000))
            spelled = phone_spelling(country, nsn, rng)
            parsed = phonenumbers.parse(spelled, "SE")
            e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            kind = phonenumbers.number_type(parsed)
            if e164 != f"+{country.calling}{nsn}" or kind not in (T.MOBILE, T.FIXED_LINE_OR_MOBILE):
                raise AssertionError(f"{country.code}: {spelled!r} -> {e164} {kind}")
            fixed = fixed_line(country, rng)
            if fixed is not None:
                kind = phonenumbers.number_type(phonenumbers.parse(fixed, "SE"))
                if kind != T.FIXED_LINE:
                    raise AssertionError(f"{country.code}: fixed line {fixed!r} is {kind}")
        indexes = rng.sample(range(2_000_000), 2000)
        if len({mobile_nsn(country, i) for i in indexes}) != len(indexes):
            raise AssertionError(f"{country.code}: numbers are not unique")
    for spelled in INVALID_PHONES:
        try:
            parsed = phonenumbers.parse(spelled, "SE")
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            raise AssertionError(f"{spelled!r} should be invalid")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out", type=Path, help="CSV file to write")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--clean", action="store_true", help="every row a distinct, valid, consenting person")
    parser.add_argument("--suppress", type=Path, help="also write an opt-out list here")
    parser.add_argument("--suppress-rate", type=float, default=0.01)
    parser.add_argument("--no-check", action="store_true", help="skip the phonenumbers self-check")
    args = parser.parse_args(argv)
    if not args.no_check:
        self_check()
    started = time.perf_counter()
    stats = generate(args.out, args.rows, seed=args.seed, clean=args.clean, suppress=args.suppress,
                     suppress_rate=args.suppress_rate)
    print(json.dumps({**stats.as_dict(), "seconds": round(time.perf_counter() - started, 2)}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
