"""What a notice becomes on each channel: the rendered content types, and the template files of each channel."""

from __future__ import annotations

from dataclasses import dataclass

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
    subject: str
    text: str
    html: str
    text_locale: str = ""


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
