"""One sender at a time: a campaign's lease, held for the whole send and kept alive by a heartbeat.

The lease is taken before anything is planned or sent and released at the end.
A thread with its own ledger connection renews the heartbeat every
:data:`~crisiscomms.ledger.base.HEARTBEAT_SECONDS` — also while the operator
reads the confirmation prompt — so another sender can tell a live holder from a
dead one. Every in-flight mark checks, in the same transaction, that the lease
is still this sender's: a sender that was taken over stops before its next request.

On a shared (PostgreSQL) ledger, ``join=True`` sends beside the senders already
sending the same plan (``send --plan ID --join``); each heartbeat also counts the
live senders, so that every sender takes its share of the campaign's rate limits.
"""

from __future__ import annotations

import contextlib
import threading
from types import TracebackType

from ..errors import LedgerError
from ..ledger import LedgerLocation, open_ledger
from ..ledger.base import HEARTBEAT_SECONDS, Holder, LeaseGrant, Ledger


class CampaignLease:
    def __init__(self, ledger: Ledger, location: LedgerLocation, campaign: str, holder: Holder, *,
                 join: bool = False) -> None:
        self.ledger, self.location, self.campaign, self.holder = ledger, location, campaign, holder
        self.join = join
        self._senders = 1
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.grant: LeaseGrant | None = None

    def __enter__(self) -> CampaignLease:
        self.grant = self.ledger.acquire_lease(self.campaign, self.holder, join=self.join)  # CampaignBusy
        self._senders = max(1, self.ledger.live_senders(self.campaign))
        self._thread = threading.Thread(target=self._beat, name="crisiscomms-lease", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=HEARTBEAT_SECONDS * 2)
        with contextlib.suppress(LedgerError):
            self.ledger.release_lease(self.campaign, self.holder)

    def senders(self) -> int:
        """The campaign's live senders at the last heartbeat (1 unless others joined)."""
        return self._senders

    def _beat(self) -> None:
        ledger: Ledger | None = None
        try:
            while not self._stop.wait(HEARTBEAT_SECONDS):
                try:
                    ledger = ledger or open_ledger(self.location)
                    if not ledger.heartbeat(self.campaign, self.holder):
                        self.lost.set()
                        return
                    self._senders = max(1, ledger.live_senders(self.campaign))
                except LedgerError:
                    continue  # a busy or full disk: try again at the next beat; marks check the lease anyway
        finally:
            if ledger is not None:
                with contextlib.suppress(LedgerError):
                    ledger.close()
