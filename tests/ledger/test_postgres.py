"""The PostgreSQL ledger alone: its schema, locations and masks, errors, joined senders and their claims."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from crisiscomms.errors import LedgerError
from crisiscomms.ledger import LedgerLocation, open_ledger, resolve_location
from crisiscomms.ledger import pg_connect as pg_connect_module
from crisiscomms.ledger.base import (
    CampaignBusy,
    CampaignInfo,
    ClaimPolicy,
    Holder,
    LeaseLost,
    LedgerUnavailable,
    NewPlan,
    Outcome,
    PlanRow,
)
from crisiscomms.ledger.liveness import process_start, this_host
from crisiscomms.ledger.postgres import PostgresLedger

from ..conftest import PgServer, run_cli
from .backends import sql

pytestmark = pytest.mark.postgres
T = TypeVar("T")

CAMPAIGN = "org/notice"
PLAN = "e" * 16
ME = Holder(this_host(), os.getpid(), "alice", process_start(os.getpid()), PLAN)
BOB = Holder("laptop-of-bob", 4242, "bob", "1", PLAN)
NOW = "2026-11-25T11:00:00+00:00"
POLICY = ClaimPolicy(NOW, "v1")


def _open(pg_url: str) -> Iterator[PostgresLedger]:
    ledger = open_ledger(LedgerLocation(pg_url, "--ledger"))
    assert isinstance(ledger, PostgresLedger)
    yield ledger
    ledger.close()


pg = pytest.fixture(_open, name="pg")
second = pytest.fixture(_open, name="second")  # another machine's connection to the same ledger


def write_plan(ledger: PostgresLedger, count: int, plan_id: str = PLAN) -> str:
    writer = ledger.plan_writer(NewPlan(CampaignInfo(CAMPAIGN, "notice", "org", "p.yaml"), "v1", NOW, "alice",
                                        ("sms",), False, "{}"))
    writer.add([PlanRow(i, "sms", f"+4670100{i:04d}", f"r{i}", i + 2, "sv", "UTC", None, "{}")
                for i in range(count)], [])
    return writer.finish(plan_id, "{}")


def in_threads(*jobs: Callable[[], T]) -> list[T]:
    """Run the jobs at the same moment, one thread each; their results in order."""
    barrier = threading.Barrier(len(jobs))
    results: list[T | BaseException | None] = [None] * len(jobs)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = jobs[index]()
        except BaseException as error:  # handed back to the test
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results  # type: ignore[return-value]


def claim_all(ledger: PostgresLedger, holder: Holder, limit: int) -> list[int]:
    seqs: list[int] = []
    after: int | None = -1
    while after is not None:
        claims, after = ledger.claim_batch(CAMPAIGN, PLAN, holder, POLICY, after_seq=after, limit=limit)
        seqs.extend(c.row.seq for c in claims)
    return seqs


# -- schema ------------------------------------------------------------------------------------------------------


def test_the_schema_has_a_version_table_and_two_first_opens_at_once_both_succeed(pg_url: str) -> None:
    location = LedgerLocation(pg_url, "--ledger")
    opened = in_threads(lambda: open_ledger(location), lambda: open_ledger(location))
    for ledger in opened:
        assert isinstance(ledger, PostgresLedger)
    assert sql(opened[0], "SELECT version FROM crisiscomms_schema") == [(2,)]
    for ledger in opened:
        ledger.close()


def test_a_newer_schema_is_refused(pg: PostgresLedger, pg_url: str) -> None:
    sql(pg, "UPDATE crisiscomms_schema SET version = 9")
    for create in (True, False):
        with pytest.raises(LedgerError) as error:
            open_ledger(LedgerLocation(pg_url, "--ledger"), create=create)
        assert str(error.value) == (f"the ledger {pg_url} has schema version 9, newer than this crisiscomms knows "
                                    "(up to 2). Nothing was sent. Upgrade crisiscomms, or use another ledger.")


def test_a_version_1_team_ledger_is_migrated_by_the_first_command_that_opens_it(pg: PostgresLedger,
                                                                               pg_url: str) -> None:
    sql(pg, "ALTER TABLE messages DROP COLUMN receipt")
    sql(pg, "DROP TABLE receipt_events, receipt_waiting")
    sql(pg, "UPDATE crisiscomms_schema SET version = 1")
    for ledger in _open_existing(pg_url):  # report, receipts pull: create=False, yet an older schema is upgraded
        assert sql(ledger, "SELECT version FROM crisiscomms_schema") == [(2,)]
        assert sql(ledger, "SELECT COUNT(*) FROM receipt_events") == [(0,)]
        assert sql(ledger, "SELECT receipt FROM messages") == []


def _open_existing(pg_url: str) -> Iterator[PostgresLedger]:
    ledger = open_ledger(LedgerLocation(pg_url, "--ledger"), create=False)
    assert isinstance(ledger, PostgresLedger)
    yield ledger
    ledger.close()


def test_an_empty_database_is_not_a_ledger_for_reading(pg_url: str) -> None:
    with pytest.raises(LedgerError) as error:
        open_ledger(LedgerLocation(pg_url, "--ledger"), create=False)
    assert str(error.value) == (f"no ledger in {pg_url} (no crisiscomms tables yet); give the one the send used "
                                "with --ledger, or set CRISISCOMMS_LEDGER")


# -- where the ledger is, and its password never shown -----------------------------------------------------------


def test_a_database_url_chooses_postgresql_and_is_shown_without_its_password() -> None:
    for url in ("postgresql://alice:s3cret@db.example:5432/crisis", "postgres://alice:s3cret@db.example/crisis"):
        location = resolve_location(url, {})
        assert location.is_database
        assert "s3cret" not in location.shown()
        assert location.shown() == url.replace(":s3cret@", ":***@")
    from_env = resolve_location(None, {"CRISISCOMMS_LEDGER": "postgresql://bob@h/db?password=pw&sslmode=require"})
    assert (from_env.shown(), from_env.source) == ("postgresql://bob@h/db?password=***&sslmode=require",
                                                   "CRISISCOMMS_LEDGER")
    from_playbook = resolve_location(None, {}, playbook_ledger="postgresql://carol@h/db", playbook_dir=Path("/x"))
    assert (from_playbook.target, from_playbook.is_database) == ("postgresql://carol@h/db", True)


def test_an_unknown_scheme_is_refused_with_the_password_masked() -> None:
    with pytest.raises(LedgerError) as error:
        resolve_location("mysql://root:hunter2@db/crisis", {})
    assert str(error.value) == ("the ledger 'mysql://root:***@db/crisis' (from --ledger) has an unknown scheme "
                                "'mysql'; use a SQLite file path or postgresql://USER@HOST:PORT/DB")
    assert error.value.exit_code == 3


def test_a_wrong_password_is_refused_and_never_shown(pg_server: PgServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    url = pg_server.url("postgres", password="wrong-Pa55word")
    shown = url.replace(":wrong-Pa55word@", ":***@")
    with pytest.raises(LedgerError) as error:
        open_ledger(LedgerLocation(url, "--ledger"))
    assert str(error.value) == (f"the ledger {shown} refused the password of user {pg_server.user} (password "
                                "authentication failed). Nothing was sent. Check the password in the URL, PGPASSWORD "
                                "or ~/.pgpass.")
    result = run_cli("report", "--ledger", url)
    assert result.code == 3
    assert "wrong-Pa55word" not in result.stdout + result.stderr
    assert "refused the password" in result.stderr


def test_the_right_password_in_the_url_is_used_and_never_shown(pg_server: PgServer, pg_url: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGPASSWORD")
    url = pg_url.replace(f"{pg_server.user}@", f"{pg_server.user}:{pg_server.password}@")
    ledger = open_ledger(LedgerLocation(url, "--ledger"))
    assert pg_server.password not in ledger.location
    ledger.close()
    result = run_cli("report", "--ledger", url)
    assert pg_server.password not in result.stdout + result.stderr


def test_a_missing_database_is_named(pg_server: PgServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", pg_server.password)
    url = pg_server.url("no_such_db")
    with pytest.raises(LedgerError) as error:
        open_ledger(LedgerLocation(url, "--ledger"))
    assert str(error.value) == (f"the ledger {url}: database no_such_db does not exist on that server. Nothing was "
                                "sent. Create it (createdb no_such_db) or correct the URL.")


def test_a_refused_connection_is_named() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nobody listens there
    url = f"postgresql://alice@127.0.0.1:{port}/crisis"
    with pytest.raises(LedgerError) as error:
        open_ledger(LedgerLocation(url, "--ledger"))
    assert str(error.value) == (f"cannot reach the ledger {url}: connection refused. Nothing was sent. Check the host "
                                "and port in the URL, that the server runs, and that this machine may connect to it.")


def test_a_server_that_never_answers_is_given_up_after_the_connect_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg_connect_module, "CONNECT_TIMEOUT_SECONDS", 1)
    monkeypatch.setitem(pg_connect_module.CONNECTION_OPTIONS, "connect_timeout", 1)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts, never speaks
        url = f"postgresql://alice@127.0.0.1:{silent.getsockname()[1]}/crisis"
        with pytest.raises(LedgerError) as error:
            open_ledger(LedgerLocation(url, "--ledger"))
    assert str(error.value) == (f"cannot reach the ledger {url}: no answer within 1 s. Nothing was sent. Check the "
                                "host and port in the URL, that the server runs, and that this machine may connect "
                                "to it.")


def test_a_user_who_cannot_create_tables_is_told_what_to_ask_for(pg_server: PgServer, pg_url: str) -> None:
    database = pg_url.rsplit("/", 1)[1]
    pg_server.execute("DO $$ BEGIN CREATE ROLE weakling LOGIN PASSWORD 'weak'; "
                      "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    pg_server.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC", database=database)
    url = pg_server.url(database, user="weakling", password="weak")
    with pytest.raises(LedgerError) as error:
        open_ledger(LedgerLocation(url, "--ledger"))
    shown = url.replace(":weak@", ":***@")
    assert str(error.value) == (f"the ledger {shown}: user weakling cannot create the ledger's tables in database "
                                f"{database} (permission denied for schema public); ask the database owner to GRANT "
                                "CREATE ON SCHEMA public TO weakling, or create the schema with a user who can. "
                                "Nothing was sent.")


def test_a_connection_lost_mid_run_makes_the_ledger_unavailable(pg_server: PgServer, pg_url: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg_connect_module, "CONNECT_TIMEOUT_SECONDS", 1)
    ledger = open_ledger(LedgerLocation(pg_url, "--ledger"))
    ledger.acquire_lease(CAMPAIGN, ME)
    database = pg_url.rsplit("/", 1)[1]
    pg_server.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false',
                      f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'")
    with pytest.raises(LedgerUnavailable) as error:
        ledger.heartbeat(CAMPAIGN, ME)
    assert str(error.value) == (
        f"lost the connection to the ledger {pg_url} (no connection to the server within 1 s); sending stopped at "
        "once. Messages already marked in flight stay so and are treated as uncertain by the next run; nothing is "
        "resent blindly. Resume with the same command when the database answers again.")
    assert error.value.exit_code == 3
    assert isinstance(ledger, PostgresLedger)
    ledger._pending_outcomes.append((CAMPAIGN, Outcome("sms", "+46701000001", "accepted", 1, "accepted")))
    ledger.close()  # does not wait for the lost server again (the row stays in flight: uncertain next run)


# -- joined senders ----------------------------------------------------------------------------------------------


def test_a_second_sender_joins_only_with_join_and_only_the_same_plan(pg: PostgresLedger,
                                                                     second: PostgresLedger) -> None:
    pg.acquire_lease(CAMPAIGN, ME)
    with pytest.raises(CampaignBusy):
        second.acquire_lease(CAMPAIGN, BOB)
    with pytest.raises(CampaignBusy):
        second.acquire_lease(CAMPAIGN, Holder("laptop-of-bob", 4242, "bob", "1", "another-plan"), join=True)
    grant = second.acquire_lease(CAMPAIGN, BOB, join=True)
    assert grant.taken_over is None
    assert pg.live_senders(CAMPAIGN) == 2
    assert sorted(lease.holder.operator for lease in pg.leases()) == ["alice", "bob"]
    assert pg.shared is True


def test_of_two_senders_asking_at_once_exactly_one_gets_the_campaign(pg: PostgresLedger,
                                                                      second: PostgresLedger) -> None:
    results = in_threads(lambda: pg.acquire_lease(CAMPAIGN, ME), lambda: second.acquire_lease(CAMPAIGN, BOB))
    assert sorted(type(r).__name__ for r in results) == ["CampaignBusy", "LeaseGrant"]


def test_two_joined_senders_claiming_at_once_never_claim_one_row(pg: PostgresLedger, second: PostgresLedger) -> None:
    write_plan(pg, 2_000)
    pg.acquire_lease(CAMPAIGN, ME)
    second.acquire_lease(CAMPAIGN, BOB, join=True)
    mine, bobs = in_threads(lambda: claim_all(pg, ME, 50), lambda: claim_all(second, BOB, 50))
    assert not set(mine) & set(bobs)
    assert sorted(mine + bobs) == list(range(2_000))
    holders = dict(sql(pg, "SELECT holder, COUNT(*) FROM messages GROUP BY holder"))
    assert holders == {k: v for k, v in {ME.token: len(mine), BOB.token: len(bobs)}.items() if v}


def test_a_dead_senders_chunk_returns_to_the_pool_with_its_rows_in_flight_uncertain(
        pg: PostgresLedger, second: PostgresLedger) -> None:
    write_plan(pg, 20)
    second.acquire_lease(CAMPAIGN, BOB)
    claims, _ = second.claim_batch(CAMPAIGN, PLAN, BOB, POLICY, after_seq=-1, limit=10)
    second.mark_in_flight(CAMPAIGN, BOB, [("sms", c.row.address, None) for c in claims[:3]])
    pg.acquire_lease(CAMPAIGN, ME, join=True)
    assert pg.in_flight_to_uncertain(CAMPAIGN) == 0  # bob is live: his rows in flight stay so
    sql(pg, "UPDATE leases SET heartbeat_at = '2026-01-01T00:00:00+00:00' WHERE token = ?", (BOB.token,))
    assert claim_all(pg, ME, 10) == list(range(3, 20))  # bob's chunk first (less what may have left), then the rest
    assert sorted(r.line - 2 for r in pg.rows(CAMPAIGN, states=("uncertain",))) == [0, 1, 2]
    assert second.heartbeat(CAMPAIGN, BOB) is False
    with pytest.raises(LeaseLost, match="lost its hold on campaign org/notice"):
        second.mark_in_flight(CAMPAIGN, BOB, [("sms", claims[5].row.address, None)])
    assert pg.live_senders(CAMPAIGN) == 1


def test_a_sender_that_finished_leaves_its_chunks_done_for_its_co_senders(pg: PostgresLedger,
                                                                          second: PostgresLedger) -> None:
    write_plan(pg, 30)
    pg.acquire_lease(CAMPAIGN, ME)
    second.acquire_lease(CAMPAIGN, BOB, join=True)
    claims, _ = second.claim_batch(CAMPAIGN, PLAN, BOB, POLICY, after_seq=-1, limit=10)
    second.set_state(CAMPAIGN, [("sms", c.row.address) for c in claims], "accepted")
    second.release_lease(CAMPAIGN, BOB)
    assert claim_all(pg, ME, 10) == list(range(10, 30))


def test_a_new_round_after_everyone_stopped_walks_the_whole_plan_again(pg: PostgresLedger) -> None:
    write_plan(pg, 12)
    pg.acquire_lease(CAMPAIGN, ME)
    pg.claim_batch(CAMPAIGN, PLAN, ME, POLICY, after_seq=-1, limit=5)  # then stopped (Ctrl-C): all still pending
    pg.release_lease(CAMPAIGN, ME)
    pg.acquire_lease(CAMPAIGN, ME)
    assert claim_all(pg, ME, 5) == list(range(12))


# -- receipts, and dry runs ----------------------------------------------------------------------------------


def test_receipts_on_a_postgresql_ledger_name_it_with_the_password_masked(
        pg: PostgresLedger, pg_url: str, pg_server: PgServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "t" * 32)
    url = pg_url.replace("@", f":{pg_server.password}@", 1)
    monkeypatch.delenv("PGPASSWORD")
    result = run_cli("receipts", "pull", "--ledger", url)
    assert (result.code, result.stdout) == (0, "Asked Twilio about 0 SMS: 0 now have a final status, "
                                               "0 are still on their way.\n"), result.stderr
    assert f"Ledger: {url.replace(f':{pg_server.password}@', ':***@')} (from --ledger)" in result.stderr
    assert pg_server.password not in result.stdout + result.stderr


def test_a_dry_run_reads_the_stop_list_and_creates_nothing(pg: PostgresLedger, pg_server: PgServer,
                                                           monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from crisiscomms.campaign.ledgers import legacy_stop_files, stop_numbers_without_writing

    monkeypatch.chdir(tmp_path)
    pg.add_stop(["+46701000009"], "Twilio 21610")
    assert stop_numbers_without_writing(LedgerLocation(pg.target.conninfo, "--ledger")) == ("+46701000009",)
    empty = f"t_empty_{os.getpid()}"
    pg_server.execute(f'CREATE DATABASE "{empty}"')
    location = LedgerLocation(pg_server.url(empty), "--ledger")
    assert stop_numbers_without_writing(location) == ()
    assert legacy_stop_files(location) == []
    pg_server.execute(f'DROP DATABASE "{empty}"')  # it had no tables: nothing was created in it


def test_a_malformed_url_is_refused_without_its_password() -> None:
    with pytest.raises(LedgerError) as error:
        open_ledger(LedgerLocation("postgresql://alice:Hush-77@127.0.0.1:notaport/crisis", "--ledger"))
    assert "Hush-77" not in str(error.value)
    assert str(error.value).startswith("cannot reach the ledger postgresql://alice:***@127.0.0.1:notaport/crisis: "
                                       "connection is bad: invalid integer value \"notaport\"")


def test_a_refused_sender_still_reaps_the_dead_ones(pg: PostgresLedger, second: PostgresLedger) -> None:
    dead = Holder("laptop-of-dan", 7, "dan", "1", PLAN)
    pg.acquire_lease(CAMPAIGN, dead)
    pg.acquire_lease(CAMPAIGN, ME, join=True)
    sql(pg, "UPDATE leases SET heartbeat_at = '2026-01-01T00:00:00+00:00' WHERE token = ?", (dead.token,))
    with pytest.raises(CampaignBusy) as busy:
        second.acquire_lease(CAMPAIGN, BOB)
    assert busy.value.lease.holder.operator == "alice"
    assert [lease.holder.operator for lease in pg.leases()] == ["alice"]
