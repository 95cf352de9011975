"""What a notice becomes on each channel: the rendered content types, and the template files of each channel."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .smsenc import SmsFit

CHANNEL_FILES: dict[str, tuple[str, ...]] = {
    "sms": ("sms.txt",),
    "email": ("email_subject.txt", "email.txt", "email.html"),
    "banner": ("banner_title.txt", "banner_body.txt"),
    "voice": ("voice.txt",),
    "cap": ("banner_title.txt", "banner_body.txt"),  # a CAP alert's headline and description are the banner's
}


@dataclass(frozen=True)
class SmsContent:
    text: str
    fit: SmsFit
    text_locale: str = ""  # the written locale whose templates made it (a fallback's, when the reader's has none)


@dataclass(frozen=True)
class EmailContent:
    """An e-mail as its reader gets it. ``personalised``, when set, is how SendGrid can build the same
    e-mail from a rendering shared with other readers (never part of equality: the text is what counts)."""

    subject: str
    text: str
    html: str
    text_locale: str = ""
    personalised: Personalised | None = field(default=None, compare=False, repr=False)

    @classmethod
    def substituted(cls, personalised: Personalised) -> EmailContent:
        """A reader's e-mail built from its shared rendering. Subject, text and HTML are built when first
        read: a send holds thousands of these while it fills requests, and never reads them."""
        content = object.__new__(cls)
        object.__setattr__(content, "text_locale", personalised.shared.text_locale)
        object.__setattr__(content, "personalised", personalised)
        return content

    if not TYPE_CHECKING:  # for mypy the parts are plain fields, as they are once built

        def __getattr__(self, name: str) -> str:
            personalised = self.__dict__.get("personalised")
            if name not in _PARTS or personalised is None:
                raise AttributeError(name)
            for part, value in zip(_PARTS, personalised.final(), strict=True):
                object.__setattr__(self, part, value)
            return self.__dict__[name]


_PARTS = ("subject", "text", "html")


@dataclass(frozen=True)
class Personalised:
    """A reader's e-mail as SendGrid substitutions: replacing each key of ``substitutions`` by its value
    in ``shared`` (subject, text and HTML) gives exactly the reader's own rendering."""

    shared: EmailContent  # the rendering with a substitution key where each of the reader's values goes
    substitutions: tuple[tuple[str, str], ...]  # (key, value): a text key and an HTML-escaped key per value
    marker: str  # the first character of every key; it occurs nowhere else in ``shared``

    def final(self) -> tuple[str, str, str]:
        """Subject, text and HTML as SendGrid builds them: each key replaced literally by its value."""
        parts = (self.shared.subject, self.shared.text, self.shared.html)
        for key, value in self.substitutions:
            parts = (parts[0].replace(key, value), parts[1].replace(key, value), parts[2].replace(key, value))
        return parts


def request_key(content: object) -> object:
    """What messages must share to go in one request: the shared rendering of personalised
    e-mails, else the content itself."""
    personalised = getattr(content, "personalised", None)
    return personalised.shared if isinstance(personalised, Personalised) else content


@dataclass(frozen=True)
class BannerContent:
    title: str
    body: str
    text_locale: str = ""


@dataclass(frozen=True)
class VoiceContent:
    """What a call says (plain sentences for text-to-speech, read twice)."""

    text: str
    text_locale: str = ""


Content = SmsContent | EmailContent | BannerContent | VoiceContent
