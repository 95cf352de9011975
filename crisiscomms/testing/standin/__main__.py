"""``python -m crisiscomms.testing.standin``: serve a stand-in, print its URL first, dump the record on exit."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence

from .common import DEFAULT_SENDGRID_KEY, DEFAULT_TWILIO_SID, DEFAULT_TWILIO_TOKEN, StandinConfig
from .server import run_standin


def _parser() -> argparse.ArgumentParser:
    """The command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m crisiscomms.testing.standin",
        description="Serve a local Twilio + SendGrid stand-in; print its URL first.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--rate-cap", type=float, default=None, help="requests/s per provider")
    parser.add_argument("--twilio-rate-cap", type=float, default=None)
    parser.add_argument("--sendgrid-rate-cap", type=float, default=None)
    parser.add_argument("--fail-429-rate", type=float, default=0.0)
    parser.add_argument("--fail-500-rate", type=float, default=0.0)
    parser.add_argument("--unanswered-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--opted-out", action="append", default=[], metavar="NUMBER")
    parser.add_argument("--twilio-sid", default=DEFAULT_TWILIO_SID)
    parser.add_argument("--twilio-token", default=DEFAULT_TWILIO_TOKEN)
    parser.add_argument("--sendgrid-key", default=DEFAULT_SENDGRID_KEY)
    parser.add_argument("--dump", default=None, metavar="PATH", help="write the record here on exit")
    return parser


def _config_from_args(args: argparse.Namespace) -> StandinConfig:
    """A configuration from parsed options."""
    return StandinConfig(
        twilio_sid=args.twilio_sid,
        twilio_token=args.twilio_token,
        sendgrid_key=args.sendgrid_key,
        latency=args.latency,
        rate_cap=args.rate_cap,
        twilio_rate_cap=args.twilio_rate_cap,
        sendgrid_rate_cap=args.sendgrid_rate_cap,
        fail_429_rate=args.fail_429_rate,
        fail_500_rate=args.fail_500_rate,
        unanswered_rate=args.unanswered_rate,
        seed=args.seed,
        opted_out=frozenset(args.opted_out),
    )


async def _serve(config: StandinConfig, host: str, port: int) -> str:
    """Serve until SIGTERM/SIGINT; return the final record as JSON text."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with run_standin(config, host=host, port=port) as standin:
        print(standin.url, flush=True)
        await stop.wait()
        return json.dumps(standin.snapshot())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m crisiscomms.testing.standin``."""
    args = _parser().parse_args(argv)
    try:
        config = _config_from_args(args)
    except ValueError as error:
        print(f"standin: {error}", file=sys.stderr)
        return 2
    record = asyncio.run(_serve(config, args.host, args.port))
    if args.dump is None:
        print(record, flush=True)
    else:
        with open(args.dump, "w", encoding="utf-8") as out:
            out.write(record + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
