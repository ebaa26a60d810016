"""Micro-benchmarks in the bench process: understanding, mark-done against a big audit trail, start-up.

These call the product's own code (TinyStore, PgStore, Understander) directly, so they time exactly that code
and nothing of HTTP or botbuilder. Also the generator of big audit trails (`write_trail`, `prepare`) that
bench/history.py uses too.
"""
from __future__ import annotations

import csv
import random
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from bench import servers
from bench.activities import MUNICIPALITIES_CSV
from bench.load import percentile

TEST_DATA = Path(__file__).resolve().parents[1] / "tests" / "data"  # data, not test code
# The messages timed: the first corpus, and the held-out set as users wrote it (timing only, no scores).
CORPORA = (TEST_DATA / "utterances.yaml", TEST_DATA / "heldout" / "dev.yaml", TEST_DATA / "heldout" / "test.yaml")


# -- understanding -------------------------------------------------------------------------------------
@dataclass
class Understanding:
    utterances: int
    median_ms: float  # first time an Understander sees the utterance
    p95_ms: float
    p99_ms: float
    max_ms: float
    slowest: str
    repeat_median_ms: float  # the same utterance again (Understander caches results per text)


def understanding(passes: int) -> Understanding:
    """Per corpus utterance, its median over `passes` passes; the figures are the median and p95 of those.

    Understander caches results by the raw text, so every call below that is meant to be timed uncached
    gets a raw text it has not seen: the utterance with a different run of edge spaces, which clean()
    strips before anything else (same work, new cache key). The warm-up pass (leading space) fills the
    module-level caches (hassil's, regexes) as in a running server. The repeat figure is the cached path."""
    from content import load_content
    from dialogs.understanding import Understander

    understander = Understander(load_content())
    texts = [entry["text"] or "" for path in CORPORA for entry in yaml.safe_load(path.read_text(encoding="utf-8"))]
    for text in texts:
        understander.understand(" " + text)
    samples: list[list[float]] = [[] for _ in texts]
    for n in range(1, passes + 1):
        for i, text in enumerate(texts):
            padded = text + " " * n
            started = time.perf_counter()
            understander.understand(padded)
            samples[i].append(time.perf_counter() - started)
    repeats = []
    for text in texts:
        started = time.perf_counter()
        understander.understand(text + " ")  # seen in pass 1
        repeats.append((time.perf_counter() - started) * 1000)
    per_text = [statistics.median(s) * 1000 for s in samples]
    slowest = max(range(len(texts)), key=per_text.__getitem__)
    return Understanding(len(texts), statistics.median(per_text), percentile(per_text, 95), percentile(per_text, 99),
                         per_text[slowest], texts[slowest], statistics.median(repeats))


# -- a data dir holding N audit events -----------------------------------------------------------------
GEN_TENANT = "6f1c2b7e-0000-4000-8000-00000000a0d1"
MARK_CODE, MARK_TASK = "0751", "udpeg-projektleder"


def _codes() -> list[str]:
    with MUNICIPALITIES_CSV.open(encoding="utf-8") as fh:
        return [row["kommunekode"] for row in csv.DictReader(fh)]


def write_trail(data_dir: Path, events: int, seed: int = 7) -> dict[str, dict]:
    """Write audit.jsonl with `events` lines, as bot/store.py writes them; returns what it adds up to
    ({code: {"tenant_id", "tasks": {task id: done}}}, and the registrations under "scopes").

    Every municipality is registered first (one event each, when `events` allows) by its own personal chat
    ("a:gen-<code>", tenant GEN_TENANT), then each event flips a random task of a random municipality (done <->
    reopen), so every event is a real change, as in the store. Lines are written directly (bot.json_text, the
    store's encoder, on a dict in _event_dict's order): a million in seconds. The state files are TinyStore's
    to build (`prepare`); `check_generated` verifies that the store reads the lines back as written."""
    from bot.json_text import dumps as encode
    from content import load_content

    rng = random.Random(seed)
    codes = _codes()
    task_ids = [task.id for task in load_content().tasks]
    people = [{"id": f"aad-gen-{i}", "name": f"Bruger {i}"} for i in range(50)]
    now = datetime(2025, 1, 1, 8, 0, tzinfo=UTC)
    model: dict[str, dict] = {}
    scopes: dict[str, str] = {}
    data_dir.mkdir(parents=True, exist_ok=True)
    uniform, step = rng.random, timedelta  # random() scaled: a third of randint()'s and choice()'s cost
    n_codes, n_tasks, n_people = len(codes), len(task_ids), len(people)
    with (data_dir / "audit.jsonl").open("wb", buffering=1 << 20) as audit:
        for n in range(events):
            now += step(seconds=1 + int(uniform() * 600), microseconds=int(uniform() * 1_000_000))
            at, by = now.isoformat(), people[int(uniform() * n_people)]
            if n < len(codes):
                code = codes[n]
                scope = f"conversation:a:gen-{code}"
                event = {"code": code, "action": "register", "task_id": None, "by": by, "at": at,
                         "conversation": f"a:gen-{code}", "scope": scope, "tenant_id": GEN_TENANT, "details": None}
                model[code] = {"tenant_id": GEN_TENANT, "tasks": {}}
                scopes[scope] = code
            else:
                code, task_id = codes[int(uniform() * n_codes)], task_ids[int(uniform() * n_tasks)]
                tasks = model[code]["tasks"]
                done = not tasks.get(task_id, False)
                tasks[task_id] = done
                event = {"code": code, "action": "done" if done else "reopen", "task_id": task_id, "by": by, "at": at,
                         "conversation": f"a:gen-{code}", "scope": None, "tenant_id": None, "details": None}
            audit.write(encode(event) + b"\n")
    return {"municipalities": model, "scopes": scopes}


def prepare(data_dir: Path, events: int) -> tuple[float, float]:
    """A data dir as a bot that has been in use leaves it: the trail (`write_trail`), then TinyStore opened once
    (it replays the trail into the state files and history indexes: the one-off path of a data dir without
    a snapshot) and closed (it writes the snapshot, so the next start reads nothing of the trail). Returns the
    seconds of each step."""
    from bot.store import TinyStore

    started = time.perf_counter()
    write_trail(data_dir, events)
    written = time.perf_counter()
    TinyStore(data_dir).close()
    return written - started, time.perf_counter() - written


async def check_generated(workdir: Path, events: int = 400) -> Path:
    """Open a generated trail with the real TinyStore: every line must be what the store would write for the
    event it reads from it, and the state it builds must be what the generator meant. Returns the data dir,
    closed (so with its snapshot), for `bench.pg.check_load`; the caller removes it."""
    from bot.json_text import dumps as encode
    from bot.json_text import loads as decode
    from bot.store import TinyStore, _event, _event_dict

    data_dir = Path(tempfile.mkdtemp(prefix="audit-check-", dir=workdir))
    model = write_trail(data_dir, events)
    for number, line in enumerate((data_dir / "audit.jsonl").read_bytes().splitlines(keepends=True), start=1):
        if encode(_event_dict(_event(decode(line)))) + b"\n" != line:
            raise RuntimeError(f"bench/micro.py write_trail(): line {number} is not what bot/store.py writes for "
                               "its event, so the figures would be about another trail than the bot's")
    store = TinyStore(data_dir)
    try:
        wrong = []
        for code, expected in model["municipalities"].items():
            state = await store.municipality(code)
            tasks = {task_id: task.done for task_id, task in state.tasks.items()}
            if state.tenant_id != expected["tenant_id"] or tasks != expected["tasks"]:
                wrong.append(code)
        for scope, code in model["scopes"].items():
            registration = await store.registration(scope)
            if registration is None or registration.code != code:
                wrong.append(scope)
        if len(await store.audit(MARK_CODE)) == 0:
            wrong.append(f"{MARK_CODE}'s history")
    finally:
        store.close()
    if wrong:
        raise RuntimeError(f"TinyStore built another state from the generated trail ({wrong[:3]}): bench/micro.py "
                           "write_trail() no longer writes what bot/store.py writes")
    return data_dir


# -- mark-done against a big audit trail ----------------------------------------------------------------------
@dataclass
class MarkDone:
    events: int
    median_ms: float
    p95_ms: float
    file_kb: float  # TinyDB: the marked municipality's state file (what a checkpoint after the marks rewrites)
    audit_mb: float  # TinyDB: audit.jsonl; PostgreSQL: the events table with its indexes
    backend: str = "TinyDB"
    cpu_ms: float = 0.0  # median CPU of the bench process per call (PostgreSQL: the client's part only)


class _Marker:
    """Flips MARK_TASK of MARK_CODE in one store, timing each set_task."""

    def __init__(self, store):
        from dialogs.store import Actor

        self.store, self.actor, self.done = store, Actor("aad-bench", "Bench Bruger"), None
        self.times: list[float] = []  # seconds, wall clock: what a user waits for (a flush is most of it)
        self.cpu: list[float] = []  # seconds of this process's CPU: the store's own work, whatever the disk does

    async def mark(self, timed: bool = True) -> None:
        if self.done is None:
            current = (await self.store.municipality(MARK_CODE)).tasks.get(MARK_TASK)
            self.done = not (current.done if current else False)  # flip it, so every call is a real change
        at = datetime.now(UTC).isoformat()
        started, cpu = time.perf_counter(), time.process_time()
        change = await self.store.set_task(MARK_CODE, MARK_TASK, self.done, self.actor, at, "a:bench")
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        if not change.changed:
            raise RuntimeError("set_task changed nothing: the bench would time the no-op path")
        if timed:
            self.times.append(elapsed)
            self.cpu.append(cpu)
        self.done = not self.done


async def mark_done(sizes: list[int], samples: int, workdir: Path, pg=None, progress=lambda text: None) -> list[MarkDone]:
    """set_task (what "marker ... som udført" writes), median of `samples`, with `events` audit events already
    stored: TinyStore on a prepared data dir (the audit line, fdatasynced; its municipality's file follows at
    the next checkpoint), and, with `pg` (bench.pg.Postgres), PgStore on a database loaded from the same data
    dir (one transaction: the row locked, the event inserted, the doc updated, the commit flushed).

    Every store is filled and opened first; then the calls are interleaved, one per store per round in a
    rotating order, so that a disk or machine that gets busier during the measurement (a flush is most of a
    mark) weighs on every size alike, and the ratio between sizes is about the sizes."""
    from bench.pg import load
    from bot.pg_store import PgStore
    from bot.store import TinyStore

    markers: dict[tuple[str, int], _Marker] = {}
    dirs, databases = [], []
    try:
        for events in sizes:
            data_dir = Path(tempfile.mkdtemp(prefix=f"audit-{events}-", dir=workdir))
            dirs.append(data_dir)
            write_s, build_s = prepare(data_dir, events)
            progress(f"mark-done: {events} events written in {write_s:.1f} s, TinyStore's first open {build_s:.1f} s")
            markers[("TinyDB", events)] = _Marker(TinyStore(data_dir))
            if pg is not None:
                name, url = pg.database(f"mark{events}")
                databases.append(name)
                progress(f"mark-done: {events} events loaded into PostgreSQL in {await load(data_dir, url):.1f} s")
                markers[("PostgreSQL", events)] = _Marker(PgStore(url))
        order = list(markers.values())
        for _ in range(3):  # warm-up: the municipality's file parsed, the pool opened, its statements prepared
            for marker in order:
                await marker.mark(timed=False)
        for n in range(samples):
            shift = n % len(order)
            for marker in order[shift:] + order[:shift]:
                await marker.mark()
        results = []
        for (backend, events), marker in markers.items():
            median, p95 = statistics.median(marker.times) * 1000, percentile(marker.times, 95) * 1000
            cpu = statistics.median(marker.cpu) * 1000
            if backend == "TinyDB":
                data_dir = dirs[sizes.index(events)]
                state = data_dir / "municipalities" / f"{MARK_CODE}.json"
                results.append(MarkDone(events, median, p95, state.stat().st_size / 1024 if state.exists() else 0.0,
                                        (data_dir / "audit.jsonl").stat().st_size / 2**20, backend, cpu))
            else:
                size = await marker.store._read(lambda conn: conn.fetchval("select pg_total_relation_size('events')"))
                results.append(MarkDone(events, median, p95, 0.0, size / 2**20, backend, cpu))
        return results
    finally:
        for marker in markers.values():
            await marker.store.aclose()
            marker.store.close()
        for name in databases:
            pg.drop(name)
        for data_dir in dirs:
            shutil.rmtree(data_dir, ignore_errors=True)


# -- start-up ------------------------------------------------------------------------------------------
async def startup(times: int, workdir: Path, events: int = 0) -> list[float]:
    """Seconds from spawning `python -m bot serve` to its first 200 on /healthz, on a fresh data dir or,
    with events > 0, on one holding that many audit events (a bot that has been in use)."""
    results = []
    for i in range(times):
        data_dir = workdir / f"startup-data-{events}-{i}"
        if events:
            prepare(data_dir, events)
        server = servers.bot(workdir, data_dir)
        server.log_path = workdir / f"startup-{events}-{i}.log"
        started = time.perf_counter()
        server.start()
        try:
            await server.wait_ready(timeout=600, interval=0.002)
            results.append(time.perf_counter() - started)
        finally:
            server.stop()
            shutil.rmtree(data_dir, ignore_errors=True)
    return results


async def startup_pg(times: int, workdir: Path, pg) -> list[tuple[float, float]]:
    """Seconds from spawning `python -m bot serve` with BOT_DATABASE_URL on a new, empty database to its first
    200 on /healthz, and on /readyz (the pool opened, the schema created)."""
    results = []
    for i in range(times):
        name, url = pg.database("startup")
        server = servers.bot(workdir, workdir / f"startup-pg-{i}", database_url=url)
        server.log_path = workdir / f"startup-pg-{i}.log"
        try:
            results.append(await server.start_timed(timeout=600))
        finally:
            server.stop()
            pg.drop(name)
            shutil.rmtree(workdir / f"startup-pg-{i}", ignore_errors=True)
    return results
