"""A bot that has been in use for long: start-up and history ("historik", "hvem markerede X?") with a million
audit events stored (BENCH_HISTORY_EVENTS), on each store.

TinyDB: the trail is written directly (bench/micro.py `write_trail`: a million lines in seconds), then
`python -m bot serve` starts on it once: with no state files and no snapshot it replays the whole trail into
them (the one-off path of a data dir without a snapshot, reported for information), and its clean stop writes
the snapshot. The timed start-ups are the normal restart of that bot: spawn to 200 on /healthz (and /readyz).

PostgreSQL: the same data dir loaded into a database (bench/pg.py `load`, what `admin migrate` makes), then
`serve` with BOT_DATABASE_URL timed to /healthz and to /readyz (the first query: the pool opened, the schema
checked).

History is timed twice: the whole turn (POST "historik" / "hvem markerede Udpeg projektleder?" to the bot's
reply delivered, in the registered municipality's own chat) on the running server, and `store.audit(code)` /
`store.audit(code, task_id)` in this process, which is the store's part of that turn.
"""
from __future__ import annotations

import json
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench import servers
from bench.activities import Slot, message
from bench.connector import Connector
from bench.load import percentile
from bench.micro import GEN_TENANT, MARK_CODE, MARK_TASK, write_trail

QUESTIONS = (("historik", "all"), ("hvem markerede Udpeg projektleder?", "task"))
EXPECT = "**Historik for"  # history.header and history.header.task
SHOWN = 15  # what "historik" lists (dialogs/history.py)


@dataclass
class HistoryFigures:
    backend: str
    events: int
    filled: str  # how the store was filled, for information
    first_start_s: float | None = None  # TinyDB without a snapshot (the one-off replay), to /healthz
    healthz_s: list[float] = field(default_factory=list)
    readyz_s: list[float] = field(default_factory=list)
    turn_ms: dict[str, list[float]] = field(default_factory=lambda: {"all": [], "task": []})
    audit_ms: dict[str, list[float]] = field(default_factory=lambda: {"all": [], "task": []})
    problems: list[str] = field(default_factory=list)
    shown: dict[str, int] = field(default_factory=dict)  # events store.audit gave (what the replies must list)

    @staticmethod
    def median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    @staticmethod
    def p95(values: list[float]) -> float:
        return percentile(values, 95) if values else float("nan")


def _activity(text: str, service_url: str) -> dict:
    """The municipality's own personal chat, as write_trail registered it (its tenant, its scope)."""
    activity = message(text, Slot(0, "Aarhus"), service_url)
    activity["conversation"] = {"id": f"a:gen-{MARK_CODE}", "conversationType": "personal", "tenantId": GEN_TENANT}
    activity["channelData"] = {"tenant": {"id": GEN_TENANT}}
    return activity


async def _turns(server: servers.Server, connector: Connector, samples: int, figures: HistoryFigures) -> None:
    """The two questions, alternating, one at a time; each reply must list what store.audit gave (`_audits`)."""
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        for n in range(samples + 5):  # 5 unmeasured: the first parse of the municipality, the first queries
            for text, which in QUESTIONS:
                activity = _activity(text, connector.url)
                body = json.dumps(activity).encode()
                started = time.perf_counter()
                async with session.post(server.url + "/api/messages", data=body, headers=headers) as response:
                    await response.read()
                    status = response.status
                elapsed = (time.perf_counter() - started) * 1000
                said = (connector.replies.pop(activity["id"], None) or [""])[0]
                listed = said.count("\n- ")
                if status >= 300 or not said.startswith(EXPECT) or listed != figures.shown[which]:
                    figures.problems.append(f"«{text}»: HTTP {status}, {listed} events listed, not "
                                            f"{figures.shown[which]}: {said[:60]!r}")
                if n >= 5:
                    figures.turn_ms[which].append(elapsed)


async def _audits(store, samples: int, figures: HistoryFigures) -> None:
    """store.audit as "historik" calls it (limit 15). The municipality's list must be full (it has far more
    events); the task's must hold some, and never more than 15."""
    for n in range(samples + 1):  # 1 unmeasured (the file parsed, the pool opened)
        for which, task in (("all", None), ("task", MARK_TASK)):
            started = time.perf_counter()
            found = await store.audit(MARK_CODE, task, limit=SHOWN)
            elapsed = (time.perf_counter() - started) * 1000
            if n == 0:
                figures.shown[which] = len(found)
                if not found or (task is None and len(found) != SHOWN) or len(found) > SHOWN:
                    figures.problems.append(f"store.audit({MARK_CODE!r}, {task!r}) gave {len(found)} events")
            elif len(found) != figures.shown[which]:
                figures.problems.append(f"store.audit({MARK_CODE!r}, {task!r}) gave {len(found)} events, then "
                                        f"{figures.shown[which]}")
            if n:
                figures.audit_ms[which].append(elapsed)


async def tinydb(events: int, startups: int, samples: int, workdir: Path, connector: Connector,
                 progress) -> tuple[HistoryFigures, Path]:
    """Returns the figures and the data dir (snapshot in place), for `postgresql` to load."""
    from bot.store import TinyStore

    data_dir = workdir / "history-data"
    started = time.perf_counter()
    write_trail(data_dir, events)
    written = time.perf_counter() - started
    progress(f"history: {events} events written in {written:.1f} s; first start (no snapshot: replays them all)")
    figures = HistoryFigures("TinyDB", events, f"trail written in {written:.1f} s")
    server = servers.bot(workdir, data_dir)
    server.log_path = workdir / "history-first.log"
    try:
        figures.first_start_s, _ = await server.start_timed(timeout=3600)
    finally:
        server.stop(timeout=600)  # its clean stop writes the snapshot
    if not (data_dir / "snapshot.json").exists():
        raise RuntimeError(f"serve wrote no snapshot.json when it stopped; see {server.log_path}")
    store = TinyStore(data_dir)  # in this process, while no server runs: the store's part of the turn
    try:
        await _audits(store, samples, figures)
    finally:
        store.close()
    progress(f"history: first start {figures.first_start_s:.1f} s; now {startups} restarts with the snapshot")
    for i in range(startups):
        server = servers.bot(workdir, data_dir)
        server.log_path = workdir / f"history-tinydb-{i}.log"
        try:
            healthz, readyz = await server.start_timed()
            figures.healthz_s.append(healthz)
            figures.readyz_s.append(readyz)
            progress(f"history: TinyDB restart {i + 1}/{startups}: /healthz {healthz:.2f} s, /readyz {readyz:.2f} s")
            if i == startups - 1:
                await _turns(server, connector, samples, figures)
        finally:
            server.stop(timeout=120)
    return figures, data_dir


async def postgresql(pg, data_dir: Path, events: int, startups: int, samples: int, workdir: Path,
                     connector: Connector, progress) -> HistoryFigures:
    from bench.pg import load
    from bot.pg_store import PgStore

    name, url = pg.database("history")
    seconds = await load(data_dir, url)
    progress(f"history: {events} events loaded into PostgreSQL in {seconds:.1f} s")
    figures = HistoryFigures("PostgreSQL", events, f"loaded by COPY in {seconds:.1f} s")
    bot_dir = workdir / "history-pg-bot"  # serve's BOT_DATA_DIR: nothing of the store is there
    try:
        store = PgStore(url)
        try:
            await _audits(store, samples, figures)
        finally:
            await store.aclose()
        for i in range(startups):
            server = servers.bot(workdir, bot_dir, database_url=url)
            server.log_path = workdir / f"history-pg-{i}.log"
            try:
                healthz, readyz = await server.start_timed()
                figures.healthz_s.append(healthz)
                figures.readyz_s.append(readyz)
                progress(f"history: PostgreSQL start {i + 1}/{startups}: /healthz {healthz:.2f} s, "
                         f"/readyz {readyz:.2f} s")
                if i == startups - 1:
                    await _turns(server, connector, samples, figures)
            finally:
                server.stop(timeout=120)
    finally:
        pg.drop(name)
        shutil.rmtree(bot_dir, ignore_errors=True)
    return figures
