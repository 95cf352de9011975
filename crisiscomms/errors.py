"""The one error hierarchy of crisiscomms and the exit codes it maps to.

Every problem the tool knows how to explain is a :class:`CrisisCommsError`.
The command-line layer catches it in one place, prints ``str(error)`` and
exits with ``error.exit_code``. Anything else is a bug: the top-level handler
writes the traceback to a file and tells the user where it is.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented exit codes (see README, "Exit codes")."""

    OK = 0
    FAILED = 1  # validation failed, or some messages failed
    USAGE = 2  # bad command-line usage
    INPUT = 3  # input could not be read or is invalid
    PROVIDER = 4  # provider credentials or configuration rejected
    REFUSED = 5  # the send needs a decision first: an approval, or a choice about a changed text
    INTERNAL = 70  # a bug: the traceback was written to a file
    BUSY = 75  # another sender holds the campaign (try again later)
    INTERRUPTED = 130  # Ctrl-C


class CrisisCommsError(Exception):
    """Base class of every error crisiscomms explains to its user."""

    exit_code: ExitCode = ExitCode.FAILED


class UsageError(CrisisCommsError):
    """The command line asks for something that cannot be done."""

    exit_code = ExitCode.USAGE


class InputError(CrisisCommsError):
    """An input file (playbook, template, audience, ledger) cannot be used."""

    exit_code = ExitCode.INPUT


class PlaybookInvalid(InputError):
    """A playbook failed validation; ``diagnostics`` says where and why."""

    def __init__(self, message: str, diagnostics: list[object] | None = None) -> None:
        super().__init__(message)
        self.diagnostics = diagnostics or []


class TemplateError(InputError):
    """A template cannot be loaded or rendered."""


class AudienceError(InputError):
    """The audience file cannot be read at all (a bad row is skipped, not raised)."""


class LedgerError(InputError):
    """The send ledger cannot be opened or written."""


class ProviderError(CrisisCommsError):
    """A provider rejected the run as a whole (credentials, configuration)."""

    exit_code = ExitCode.PROVIDER


class SendRefused(CrisisCommsError):
    """The send needs a decision first (an approval, or what to do about a changed text): nothing was sent."""

    exit_code = ExitCode.REFUSED
