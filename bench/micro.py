"""Micro-benchmarks in the bench process: understanding, mark-done against a big audit trail, start-up.

These call the product's own code (TinyStore, Understander) directly, so they time exactly that code and
nothing of HTTP or botbuilder.
"""
from __future__ import annotations

import csv
import hashlib
import json
import random
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
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


# -- mark-done against a pre-filled data dir ---------------------------------------------------------------
@dataclass
class MarkDone:
    events: int
    median_ms: float
    p95_ms: float
    file_kb: float  # the marked municipality's state file: what a checkpoint after the marks rewrites
    audit_mb: float


GEN_TENANT = "6f1c2b7e-0000-4000-8000-00000000a0d1"
MARK_CODE, MARK_TASK = "0751", "udpeg-projektleder"


def generate(data_dir: Path, events: int, seed: int = 7) -> None:
    """Write audit.jsonl and the state.json it adds up to, as bot/store.py writes them.

    Every municipality is registered first (one event each, when `events` allows), then each event flips a
    random task of a random municipality (done <-> reopen), so every event is a real change, as in the
    store. Lines are `json.dumps(asdict(AuditEvent))`; state.json goes through the store's own
    AtomicJSONStorage. `check_generated` verifies the store agrees."""
    from bot.json_file import AtomicJSONStorage
    from content import load_content
    from dialogs.store import Actor, AuditEvent, Registration

    rng = random.Random(seed)
    with MUNICIPALITIES_CSV.open(encoding="utf-8") as fh:
        codes = [row["kommunekode"] for row in csv.DictReader(fh)]
    task_ids = [task.id for task in load_content().tasks]
    people = [Actor(f"aad-gen-{i}", f"Bruger {i}") for i in range(50)]
    now = datetime(2025, 1, 1, 8, 0, tzinfo=UTC)
    municipalities: dict[str, dict] = {}  # code -> TinyDB doc, in insertion order (= TinyDB doc ids)
    registrations: list[dict] = []
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "audit.jsonl").open("w", encoding="utf-8") as audit:
        for n in range(events):
            now += timedelta(seconds=rng.randint(1, 600), microseconds=rng.randint(0, 999_999))
            at, by = now.isoformat(), rng.choice(people)
            if n < len(codes):
                code = codes[n]
                scope = f"conversation:a:gen-{code}"
                event = AuditEvent(code, "register", None, by, at, f"a:gen-{code}", scope=scope, tenant_id=GEN_TENANT)
                registrations.append(asdict(Registration(scope, code, GEN_TENANT, by, at)))
                municipalities[code] = {"code": code, "tenant_id": GEN_TENANT, "tasks": {}}
            else:
                code, task_id = rng.choice(codes), rng.choice(task_ids)
                tasks = municipalities[code]["tasks"]
                done = not (tasks.get(task_id) or {}).get("done", False)
                event = AuditEvent(code, "done" if done else "reopen", task_id, by, at, f"a:gen-{code}")
                tasks[task_id] = {"done": done, "by": asdict(by), "at": at, "conversation": event.conversation}
            audit.write(json.dumps(asdict(event), ensure_ascii=False, separators=(",", ":")) + "\n")
    # One file per municipality (bot/store.py: municipalities/<code>.json), registrations in state.json.
    (data_dir / "municipalities").mkdir(exist_ok=True)
    for code, doc in municipalities.items():
        AtomicJSONStorage(data_dir / "municipalities" / f"{code}.json").write({"municipality": {"1": doc}})
    if registrations:
        AtomicJSONStorage(data_dir / "state.json").write(
            {"registrations": {str(i): doc for i, doc in enumerate(registrations, start=1)}})


def _digest(data_dir: Path) -> str:
    """Every state file the store keeps (state.json and one file per municipality)."""
    files = [data_dir / "state.json", *sorted((data_dir / "municipalities").glob("*.json"))]
    return hashlib.sha256(b"".join(p.read_bytes() for p in files if p.exists())).hexdigest()


def check_generated(workdir: Path, events: int = 400) -> float:
    """Open a generated data dir with the real TinyStore; returns the open time in seconds.

    Start-up reconciliation rewrites a state file only where it disagrees with the audit trail, so
    unchanged files mean generate() writes what bot/store.py writes. Small on purpose: the open is slow
    (see open_time)."""
    from bot.store import TinyStore

    data_dir = Path(tempfile.mkdtemp(prefix="audit-check-", dir=workdir))
    generate(data_dir, events)
    before = _digest(data_dir)
    started = time.perf_counter()
    TinyStore(data_dir)
    elapsed = time.perf_counter() - started
    if _digest(data_dir) != before:
        raise RuntimeError("TinyStore reconciled a generated state.json: bench/micro.py generate() no longer "
                           "writes what bot/store.py writes, so the mark-done figures would mean nothing")
    shutil.rmtree(data_dir, ignore_errors=True)
    return elapsed


async def _time_set_task(data_dir: Path, events: int, samples: int) -> list[float]:
    from bot.store import TinyStore
    from dialogs.store import Actor

    # Open the store on the empty dir, then fill it, as another process would: the first change reads the
    # new trail once (catch-up, in the warm-up calls below) and the municipality's file, after which
    # set_task runs as in a server that has this data.
    store = TinyStore(data_dir)
    generate(data_dir, events)
    actor = Actor("aad-bench", "Bench Bruger")
    current = (await store.municipality(MARK_CODE)).tasks.get(MARK_TASK)
    done = not (current.done if current else False)  # flip it, so every call is a real change
    times = []
    for i in range(samples + 3):  # 3 warm-up calls
        at = datetime.now(UTC).isoformat()
        started = time.perf_counter()
        change = await store.set_task(MARK_CODE, MARK_TASK, done, actor, at, "a:bench")
        elapsed = time.perf_counter() - started
        if not change.changed:
            raise RuntimeError("set_task changed nothing: the bench would time the no-op path")
        if i >= 3:
            times.append(elapsed)
        done = not done
    return times


async def mark_done(sizes: list[int], samples: int, workdir: Path) -> list[MarkDone]:
    """TinyStore.set_task (what "marker ... som udført" writes: the audit line, fdatasynced; its
    municipality's file follows at the next checkpoint), median of `samples`, with `events` audit events
    already stored."""
    results = []
    for events in sizes:
        data_dir = Path(tempfile.mkdtemp(prefix=f"audit-{events}-", dir=workdir))
        times = await _time_set_task(data_dir, events, samples)
        state = data_dir / "municipalities" / f"{MARK_CODE}.json"
        results.append(MarkDone(events, statistics.median(times) * 1000, percentile(times, 95) * 1000,
                                state.stat().st_size / 1024 if state.exists() else 0.0,
                                (data_dir / "audit.jsonl").stat().st_size / 2**20))
        shutil.rmtree(data_dir, ignore_errors=True)
    return results


# -- start-up ------------------------------------------------------------------------------------------
async def startup(times: int, workdir: Path, events: int = 0) -> list[float]:
    """Seconds from spawning `python -m bot serve` to its first 200 on /healthz, on a fresh data dir or,
    with events > 0, on one holding that many audit events (a bot that has been in use)."""
    results = []
    for i in range(times):
        data_dir = workdir / f"startup-data-{events}-{i}"
        if events:
            generate(data_dir, events)
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
