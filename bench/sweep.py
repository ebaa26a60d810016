"""The nudge sweep at full size: 98 municipalities × 3 conversations, every one with a nudge due.

`python -m bench.sweep` prints the figures; `python -m bench` includes them, for each store. Sized by
BENCH_SWEEPS (timed sweeps, each on a fresh data dir or database, after one unmeasured warm-up sweep).

Each run builds a real data dir through the product's own store API (TinyStore.register, record,
remember_conversation — what the dialogs and the handler call), or the same in a PostgreSQL database
(PgStore; each run on a copy of it made with CREATE DATABASE … TEMPLATE), builds the app as `serve` does
(bot.app.make_app, local mode: no app id, so no tokens) and times one NudgeSender.sweep(now) end to end:
plan, claim, deliver through CloudAdapter.continue_conversation to the in-bench Connector, finish. The
Connector checks that every planned nudge arrived exactly once, in its own conversation, and counts the
TCP connections the sweep opened: "one keep-alive session" means a few, not one per message.
"""
from __future__ import annotations

import asyncio
import csv
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.activities import BOT_ID, MUNICIPALITIES_CSV
from bench.connector import Connector

CONVERSATIONS_EACH = 3  # a team channel, a group chat and a personal chat per municipality
NOW = datetime(2026, 12, 15, 9, 0, tzinfo=ZoneInfo("Europe/Copenhagen"))  # a Tuesday morning: window open
# Per municipality (by its index, mod 3) one go-live date that makes exactly one nudge due in each of its
# conversations at NOW: the 14-day reminder, the 3-day reminder, or the first overdue notice.
GO_LIVE_OFFSETS = ((13, "ahead"), (2, "ahead"), (-3, "overdue"))


@dataclass
class SweepRun:
    seconds: float
    cpu_seconds: float  # this process's CPU during the sweep: the bot's and the in-bench Connector's
    planned: int
    sent: int
    connections: int  # TCP connections the Connector accepted during the sweep
    connection_limit: int  # the bot's client connector limit (bot/connector.py)
    problems: list[str] = field(default_factory=list)


@dataclass
class SweepFigures:
    runs: list[SweepRun]
    backend: str = "TinyDB"

    @property
    def median_s(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def median_cpu_s(self) -> float:
        return statistics.median(r.cpu_seconds for r in self.runs)

    @property
    def nudges(self) -> int:
        return max(r.sent for r in self.runs)

    @property
    def connections(self) -> int:
        return max(r.connections for r in self.runs)

    @property
    def connection_limit(self) -> int:
        return min(r.connection_limit for r in self.runs)

    @property
    def ms_per_nudge(self) -> float:
        return self.median_s * 1000 / max(1, self.nudges)

    @property
    def problems(self) -> list[str]:
        return [p for r in self.runs for p in r.problems]

    def line(self) -> str:
        delivery = (f"{len(self.problems)} problems: {'; '.join(self.problems[:3])}" if self.problems else
                    "each delivered once, to its own conversation")
        return (f"nudge sweep ({len(_codes())} × {CONVERSATIONS_EACH}, all due), {self.backend}: median {self.median_s:.2f} s of "
                + ", ".join(f"{r.seconds:.2f}" for r in self.runs)
                + f" s (CPU {self.median_cpu_s:.2f} s, bench Connector included); {self.nudges} nudges sent, "
                f"{self.ms_per_nudge:.1f} ms each; {connections(self.connections)} (client limit "
                f"{self.connection_limit}); {delivery}")


def connections(n: int) -> str:
    return f"{n} TCP connection{'' if n == 1 else 's'}"


def _codes() -> list[str]:
    with MUNICIPALITIES_CSV.open(encoding="utf-8") as fh:
        return [row["kommunekode"] for row in csv.DictReader(fh)]


def _tenant(code: str) -> str:
    return f"6f1c2b7e-0000-4000-8000-{int(code):012d}"  # each municipality in its own Microsoft 365 tenant


def _reference(service_url: str, conversation: dict, tenant: str, locale: str) -> dict:
    """What bot/handler.py stores for a conversation: botbuilder's reference from an incoming Teams
    message, at the conversation's root, without the user, serialised with bot.wire.to_wire."""
    from botbuilder.core import TurnContext
    from botbuilder.schema import Activity

    from bot.wire import to_wire

    activity = Activity().deserialize({
        "type": "message", "id": "1734253200000", "channelId": "msteams", "serviceUrl": service_url,
        "from": {"id": "29:1bench-user", "name": "Mette Hansen", "aadObjectId": "aad-mette"},
        "recipient": {"id": BOT_ID, "name": "Implementeringsassistent"},
        "conversation": {**conversation, "tenantId": tenant}, "channelData": {"tenant": {"id": tenant}},
        "locale": locale})
    reference = TurnContext.get_conversation_reference(activity)
    reference.activity_id = None
    reference.user = None
    return to_wire(reference)


async def build_data_dir(data_dir: Path, service_url: str) -> dict[str, str]:
    from bot.store import TinyStore

    store = TinyStore(data_dir)
    try:
        return await build(store, service_url)
    finally:
        store.close()


async def build_database(url: str, service_url: str) -> dict[str, str]:
    from bot.pg_store import PgStore

    store = PgStore(url)
    try:
        return await build(store, service_url)
    finally:
        await store.aclose()


async def build(store, service_url: str) -> dict[str, str]:
    """Register every municipality with its tenant, give it three conversations and a go-live date that
    makes one nudge due in each. Returns conversation id -> the nudge kind it must get."""
    from dialogs.store import Actor, AuditEvent, ConversationRecord, Registration

    by = Actor("aad-mette", "Mette Hansen")
    at = (NOW - timedelta(days=60)).isoformat()
    expected: dict[str, str] = {}
    for index, code in enumerate(_codes()):
        tenant = _tenant(code)
        team = f"19:team-{code}-0f3a9c2b7d4e4f1a@thread.tacv2"  # a team's General channel has the team's id
        group = f"19:group-{code}-5c8e1d2a9b7f4e3c@thread.v2"
        personal = f"a:1bench-personal-{code}-Yx0s9pQ2wLm7"
        conversations = [  # (id, Teams conversation fields, registration scope, registers?, language)
            (team, {"id": team, "conversationType": "channel", "isGroup": True}, f"team:{team}", True, "da"),
            (group, {"id": group, "conversationType": "groupChat", "isGroup": True}, f"conversation:{group}", True, "da"),
            # A personal chat uses its tenant's only municipality without registering (dialogs/context.py).
            (personal, {"id": personal, "conversationType": "personal"}, f"conversation:{personal}", False,
             "en" if index % 2 else "da"),
        ]
        for key, _, scope, registers, _ in conversations:
            if registers and await store.register(Registration(scope, code, tenant, by, at), key) is not None:
                raise RuntimeError(f"{code}: registration refused")
        days, kind = GO_LIVE_OFFSETS[index % len(GO_LIVE_OFFSETS)]
        go_live: date = NOW.date() + timedelta(days=days)
        await store.record(AuditEvent(code, "milestone", None, by, at, team,
                                      details={"name": "go-live", "date": go_live.isoformat()}))
        for key, conversation, scope, _, language in conversations:
            reference = _reference(service_url, conversation, tenant, "da-DK" if language == "da" else "en-US")
            await store.remember_conversation(ConversationRecord(key, code, reference, language, scope=scope))
            expected[key] = kind
    return expected


def _check(report, expected: dict[str, str], sends: list[tuple[str, str]]) -> list[str]:
    """Every conversation got exactly its one planned nudge, and nothing else arrived."""
    problems = []
    planned = {n.conversation.key: n for n in report.planned}
    if len(report.planned) != len(expected) or set(planned) != set(expected):
        problems.append(f"planned {len(report.planned)} nudges in {len(planned)} conversations, "
                        f"expected one in each of {len(expected)}")
    wrong_kind = [key for key, n in planned.items() if expected.get(key) != n.kind]
    if wrong_kind:
        problems.append(f"{len(wrong_kind)} nudges of an unexpected kind, e.g. {planned[wrong_kind[0]].key}")
    if report.failed or report.skipped or report.deactivated or len(report.sent) != len(report.planned):
        problems.append(f"sent {len(report.sent)} of {len(report.planned)}: failed {len(report.failed)}, "
                        f"skipped {len(report.skipped)}, gone {len(report.deactivated)}")
    arrived = Counter(conversation for conversation, _ in sends)
    twice = [key for key, n in arrived.items() if n > 1]
    missing = [key for key in expected if key not in arrived]
    stray = [key for key in arrived if key not in expected]
    if twice or missing or stray:
        problems.append(f"Connector: {len(twice)} conversations got more than one, {len(missing)} none, "
                        f"{len(stray)} unknown")
    wrong_text = [key for key, text in sends if key in planned and text != planned[key].text]
    if wrong_text:
        problems.append(f"{len(wrong_text)} conversations got another conversation's text, e.g. {wrong_text[0]}")
    return problems


async def one_sweep(template: Path | str, expected: dict[str, str], connector: Connector, workdir: Path,
                    pg=None) -> SweepRun:
    """One sweep on a fresh copy of the template data dir (nothing sent yet), or with `pg` (bench.pg.Postgres)
    of the template database, through an app built as `serve` builds it."""
    from bot.app import NUDGES, SERVICES, make_app
    from bot.config import Config

    data_dir = Path(tempfile.mkdtemp(prefix="sweep-", dir=workdir)) / "data"
    database, url = "", ""
    if pg is None:
        shutil.copytree(template, data_dir)
    else:
        data_dir.mkdir()
        database, url = pg.database("sweep", template=str(template))
    try:
        # Interval 0: no timer sweeps of its own (the app is not started anyway, only its parts are used).
        config = Config(data_dir=data_dir, port=0, nudge_interval_minutes=0, database_url=url)
        app = make_app(config, clock=lambda: NOW)
        sender = app[NUDGES]
        authentication = sender.adapter.bot_framework_authentication
        store = app[SERVICES].store
        if pg is not None:
            await store.writable()  # the pool open, as in a server that has answered /readyz
        connector.reset_counts()
        try:
            started, cpu_started = time.perf_counter(), time.process_time()
            report = await sender.sweep(NOW)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            limit = authentication.session().connector.limit
        finally:
            await authentication.close()
            await store.aclose()
            store.close()
        return SweepRun(seconds, cpu, len(report.planned), len(report.sent), connector.connections, limit,
                        _check(report, expected, connector.sends))
    finally:
        shutil.rmtree(data_dir.parent, ignore_errors=True)
        if database:
            pg.drop(database)


async def measure(sweeps: int, workdir: Path, progress=lambda text: None, pg=None) -> SweepFigures:
    """One unmeasured warm-up sweep (first imports, babel's locale data), then `sweeps` timed ones; on
    PostgreSQL with `pg` (bench.pg.Postgres)."""
    connector = Connector()
    connector.keep_sends = True
    await connector.start()
    backend = "PostgreSQL" if pg else "TinyDB"
    template: Path | str | None = None
    try:
        started = time.perf_counter()
        if pg is None:
            template = Path(tempfile.mkdtemp(prefix="sweep-template-", dir=workdir))
            expected = await build_data_dir(template, connector.url)
        else:
            template, url = pg.database("sweep_template")
            expected = await build_database(url, connector.url)
        progress(f"nudge sweep, {backend}: {len(expected)} conversations stored in "
                 f"{time.perf_counter() - started:.1f} s")
        warm = await one_sweep(template, expected, connector, workdir, pg)
        progress(f"nudge sweep warm-up: {warm.seconds:.2f} s, {warm.sent} sent, {connections(warm.connections)}")
        runs = []
        for n in range(1, sweeps + 1):
            run = await one_sweep(template, expected, connector, workdir, pg)
            runs.append(run)
            progress(f"nudge sweep {n}/{sweeps}, {backend}: {run.seconds:.2f} s (CPU {run.cpu_seconds:.2f} s), "
                     f"{run.sent} sent, " + connections(run.connections)
                     + (f", problems: {run.problems}" if run.problems else ""))
    finally:
        await connector.stop()
        if isinstance(template, Path):
            shutil.rmtree(template, ignore_errors=True)
        elif template is not None:
            pg.drop(template)
    return SweepFigures(runs, backend)


def main() -> int:
    sweeps = int(os.environ.get("BENCH_SWEEPS", 5))
    workdir = Path(tempfile.mkdtemp(prefix="kombit-sweep-"))
    try:
        figures = asyncio.run(measure(sweeps, workdir, lambda text: print(text, file=sys.stderr, flush=True)))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(figures.line())
    from bench.report import sweep_target  # here: bench.report imports this module
    print(sweep_target(figures).line())
    return 1 if figures.problems else 0


if __name__ == "__main__":
    sys.exit(main())
