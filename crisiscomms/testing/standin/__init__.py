"""A local stand-in for the Twilio Messages and Calls APIs and the SendGrid v3 mail API.

One aiohttp server on 127.0.0.1 answers both providers (their paths do not
collide), so ``twilio_url`` and ``sendgrid_url`` are the same base URL. The
server records every accepted SMS, call and e-mail delivery, counts its answers by
provider and status, and can misbehave on purpose: latency, a per-second rate
cap, random 429 and 500 answers, and "unanswered" requests that are accepted
and recorded but whose connection is closed before any response is written.

Ways to run it:

* ``async with run_standin(config) as standin:`` in the test's event loop;
* ``with standin_in_thread(config) as standin:`` for synchronous tests or
  clients in another process (own event loop in a daemon thread);
* ``python -m crisiscomms.testing.standin --port 0 ...``, which prints the
  base URL as its first line on stdout and dumps the record as JSON when it
  gets SIGTERM or SIGINT.

Control endpoints: ``GET /_standin/record``, ``GET|POST /_standin/config``
and ``POST /_standin/reset``.

One module per provider: :mod:`.twilio_messages`, :mod:`.twilio_calls`
(sharing :mod:`.twilio_common`), :mod:`.sendgrid`; :mod:`.server` holds the
state, the routes and the runners, :mod:`.common` the configuration.
"""

from __future__ import annotations

from .common import (
    DEFAULT_SENDGRID_KEY,
    DEFAULT_TWILIO_SID,
    DEFAULT_TWILIO_TOKEN,
    PROVIDERS,
    TWILIO_API_VERSION,
    Provider,
    StandinConfig,
)
from .sendgrid import EmailRecord
from .server import Standin, run_standin, standin_in_thread
from .twilio_calls import CallRecord
from .twilio_messages import SmsRecord, sms_segments

__all__ = [
    "DEFAULT_SENDGRID_KEY",
    "DEFAULT_TWILIO_SID",
    "DEFAULT_TWILIO_TOKEN",
    "PROVIDERS",
    "TWILIO_API_VERSION",
    "CallRecord",
    "EmailRecord",
    "Provider",
    "SmsRecord",
    "Standin",
    "StandinConfig",
    "run_standin",
    "sms_segments",
    "standin_in_thread",
]
