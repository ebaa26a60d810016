"""`python -m bench.profile [ACTIVITIES] [-c N] [--cprofile] [--keep FILE] [--postgres]`: where the bot's CPU goes
per turn.

Drives `python -m bot serve` (own process, fresh data dir, loopback Connector; with --postgres on a fresh
database of a throwaway PostgreSQL 15, bench/pg.py) with the bench's mix at concurrency 8 (or -c N) and
reports where its CPU went, per activity:

- with py-spy (on PATH, or BENCH_PY_SPY=/path/to/py-spy; not a project dependency: `pip install py-spy`
  anywhere), it samples the running bot — only the thread holding the GIL, so it sees Python work, not
  waits — and prints the CPU split by area (scaled to
  the user CPU /proc measured) and the hottest frames. Low overhead, so the shares are trustworthy.
- otherwise (or with --cprofile) the bot runs as `python -m bench.profiled_bot FILE`: cProfile on every
  thread with a CPU clock. Exact call counts, but the profiler inflates deep Python call trees (hassil,
  msrest, TinyDB) several times: read the ranking, not the shares.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import io
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import load, servers
from bench.activities import Slot, municipality_names
from bench.connector import Connector

# Each sample goes to the first area (in this order) one of whose markers appears in its stack.
AREAS = [
    ("understanding (hassil templates, rapidfuzz names)", ["Understander.understand"]),
    ("inbound parse (json, Activity built from it)", ["parse (bot/inbound.py)"]),
    ("msrest (conversation references, fallbacks)", ["(msrest/serialization.py)"]),
    ("store: PostgreSQL (asyncpg: queries, pool, codecs)", ["asyncpg"]),
    ("store: PostgreSQL (PgStore's own code)", ["(bot/pg_store.py)"]),
    ("store: cross-process file lock", ["ProcessLock."]),
    ("store: state files (JSON, rename)", ["AtomicJSONStorage.write", "write_atomically"]),
    ("store: audit append and fdatasync", ["TinyStore._append_audit", "AuditLog."]),
    ("store: checkpoints of deferred files", ["TinyStore.checkpoint"]),
    ("store: TinyDB queries", ["(tinydb/"]),
    ("store: rest of a change", ["TinyStore._write"]),
    ("worker threads (to_thread, futures, wake-ups)",
     ["to_thread", "run_in_executor", "_chain_future", "_copy_future_state", "Future.set_result", "_WorkItem.run",
      "_worker (concurrent", "_read_from_self", "call_soon_threadsafe", "ThreadPoolExecutor.submit"]),
    ("reply: card JSON and the HTTP POST to the Connector", ["_send (bot/handler.py)"]),
    ("remember conversation (per turn)", ["_remember (bot/handler.py)"]),
    ("authentication", ["authenticate_request"]),
    ("logging (a JSON line per turn)", ["(logging/", "log_access"]),
    ("dialogs (rest of the turn)", ["(dialogs/"]),
    ("botbuilder pipeline (rest)", ["(botbuilder/", "(core/", "(connector/"]),
    ("aiohttp server and client, event loop (rest)", [""]),
]


def _per_thread_cpu(pid: int) -> dict[str, tuple[int, int]]:
    """(utime, stime) in ticks per thread id: the split between the event loop and any other thread."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except FileNotFoundError:
            continue  # a thread that ended meanwhile
        fields = stat[stat.rindex(")") + 2:].split()
        out[tid] = (int(fields[11]), int(fields[12]))
    return out


def _areas(raw: Path) -> tuple[collections.Counter, collections.Counter, int]:
    areas, frames, total = collections.Counter(), collections.Counter(), 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        stack = re.sub(r":\d+\)", ")", stack)
        total += n
        frames[stack.rsplit(";", 1)[-1]] += n
        for name, markers in AREAS:
            if any(m in stack for m in markers):
                areas[name] += n
                break
    return areas, frames, total


async def profile(activities: int, use_py_spy: str | None, keep: Path | None, top: int = 25,
                  concurrency: int = 8, postgres: bool = False) -> str:
    workdir = Path(tempfile.mkdtemp(prefix="kombit-profile-"))
    stats_path = workdir / "bot.prof"
    pg = None
    if postgres:
        from bench.pg import Postgres
        pg = Postgres()
        try:
            pg.start()
            _, url = pg.database("profile")
        except BaseException:
            pg.stop()
            raise
    connector = Connector()
    await connector.start()
    bot = servers.bot(workdir, workdir / "bot-data", database_url=url if pg else "")
    if not use_py_spy:
        bot.argv = [sys.executable, "-m", "bench.profiled_bot", str(stats_path)]
    slots = [Slot(i, name) for i, name in enumerate(municipality_names(max(8, concurrency)))]
    out = io.StringIO()
    try:
        bot.start()
        await bot.wait_ready()
        async with load.client(len(slots)) as session:
            await load.register(session, bot, connector, slots)
            await load.drive(session, bot, connector, slots, concurrency, 200, check_text=True)  # warm-up
            spy = None
            if use_py_spy:
                raw = workdir / "py-spy.txt"
                spy = subprocess.Popen([use_py_spy, "record", "--pid", str(bot.pid), "--rate", "250", "--gil",
                                        "--nonblocking", "--threads", "--format", "raw", "--output", str(raw)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                await asyncio.sleep(1)  # let it attach
            pg_before = pg.cpu_ms() if pg else 0.0
            threads_before = _per_thread_cpu(bot.pid)
            run = await load.drive(session, bot, connector, slots, concurrency, activities, check_text=True)
            threads_after = _per_thread_cpu(bot.pid)
            pg_spent = pg.cpu_ms() - pg_before if pg else 0.0
            if spy:
                spy.send_signal(2)  # SIGINT: py-spy writes what it has and exits
                _, err = spy.communicate(timeout=60)
                if not raw.exists():
                    raise RuntimeError(f"py-spy wrote nothing: {err.decode(errors='replace')[-500:]}")
    finally:
        bot.stop(timeout=120)
        await connector.stop()
        if pg:
            pg.stop()

    tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
    main = str(bot.pid)

    def spent(which: int, in_main: bool) -> float:
        return sum((after[which] - threads_before.get(tid, (0, 0))[which]) * tick_ms
                   for tid, after in threads_after.items() if (tid == main) == in_main) / run.requests

    user = spent(0, True) + spent(0, False)
    print(f"{run.requests} activities at c={concurrency}, {run.requests / run.elapsed:.0f} act/s while profiled; missing "
          f"{run.missing}, wrong {run.wrong}, errors {run.errors}", file=out)
    print(f"CPU per activity: event-loop thread {spent(0, True):.2f} user + {spent(1, True):.2f} system ms; "
          f"other threads {spent(0, False):.2f} user + {spent(1, False):.2f} system ms", file=out)
    if pg:
        print(f"the PostgreSQL server besides (every backend, not in the figures above): "
              f"{pg_spent / run.requests:.2f} ms per activity", file=out)
    if use_py_spy:
        areas, frames, total = _areas(raw)
        print(f"\nwhere the user CPU goes ({total} py-spy samples of the GIL holder; ms/act = share × "
              f"{user:.2f} ms user CPU):", file=out)
        for name, n in areas.most_common():
            print(f"  {100 * n / total:5.1f} %  {n / total * user:5.2f} ms  {name}", file=out)
        print("\nhottest frames (own time):", file=out)
        for frame, n in frames.most_common(top):
            print(f"  {100 * n / total:5.1f} %  {frame}", file=out)
        if keep:
            shutil.copy(raw, keep)
    else:
        stats = pstats.Stats(str(stats_path), stream=out)
        stats.strip_dirs()
        for key in ("tottime", "cumulative"):
            print(f"\n=== top {top} by {key} (profiled CPU; warm-up and start-up included) ===", file=out)
            stats.sort_stats(key).print_stats(top)
        if keep:
            shutil.copy(stats_path, keep)
    if keep:
        print(f"\nraw profile kept in {keep}", file=out)
    shutil.rmtree(workdir, ignore_errors=True)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("activities", type=int, nargs="?", default=1500)
    parser.add_argument("--cprofile", action="store_true", help="use cProfile even if py-spy is there")
    parser.add_argument("--keep", type=Path, help="copy the raw profile here")
    parser.add_argument("-c", "--concurrency", type=int, default=8, help="requests in flight (default 8)")
    parser.add_argument("--postgres", action="store_true", help="the bot on PostgreSQL (BOT_DATABASE_URL)")
    args = parser.parse_args()
    py_spy = None if args.cprofile else (os.environ.get("BENCH_PY_SPY") or shutil.which("py-spy"))
    print(asyncio.run(profile(args.activities, py_spy, args.keep, concurrency=args.concurrency,
                              postgres=args.postgres)))


if __name__ == "__main__":
    main()
