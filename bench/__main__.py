"""`python -m bench` (`make bench`): load table, micro-benchmarks, targets. Sized by the environment:

  BENCH_REQUESTS=300        activities per variant, per concurrency, per round
  BENCH_ROUNDS=3            rounds; each round runs every concurrency, variants in rotating order
  BENCH_CONCURRENCY=1,8,32  concurrency levels
  BENCH_WARMUP=60           unmeasured activities per server first (lazy imports, caches, connections)
  BENCH_RSS_ACTIVITIES=10000  RSS of the bot read at half and at all of this many activities
  BENCH_RSS_LIMIT_MB=150    target for RSS at the end
  BENCH_RSS_GROWTH_MB=2     tolerance for "not growing" between the two readings (allocator noise)
  BENCH_AUDIT_EVENTS=0,10000,100000  audit-trail sizes for mark-done
  BENCH_MARK_SAMPLES=30     set_task calls timed per size
  BENCH_UNDERSTAND_PASSES=3 passes over the corpus
  BENCH_STARTUPS=3          fresh-data-dir start-ups timed
  BENCH_STARTUP_EVENTS=1000 one more start-up on a data dir with this many audit events (0: skip)
  BENCH_SWEEPS=5            timed nudge sweeps (98 × 3 conversations, all due), each on a fresh data dir (0: skip)

Progress goes to stderr, the report to stdout. Only 127.0.0.1 is ever contacted.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import load, micro, report, servers, sweep
from bench.activities import MIX, Slot, municipality_names
from bench.connector import Connector
from bench.report import VARIANTS


def _ints(name: str, default: str) -> list[int]:
    return [int(x) for x in os.environ.get(name, default).replace(" ", "").split(",") if x]


def _num(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass
class Settings:
    requests: int = int(_num("BENCH_REQUESTS", 300))
    rounds: int = int(_num("BENCH_ROUNDS", 3))
    concurrency: tuple[int, ...] = tuple(_ints("BENCH_CONCURRENCY", "1,8,32"))
    warmup: int = int(_num("BENCH_WARMUP", 60))
    rss_activities: int = int(_num("BENCH_RSS_ACTIVITIES", 10_000))
    rss_limit_mb: float = _num("BENCH_RSS_LIMIT_MB", 150)
    rss_growth_mb: float = _num("BENCH_RSS_GROWTH_MB", 2)
    audit_events: tuple[int, ...] = tuple(_ints("BENCH_AUDIT_EVENTS", "0,10000,100000"))
    mark_samples: int = int(_num("BENCH_MARK_SAMPLES", 30))
    understand_passes: int = int(_num("BENCH_UNDERSTAND_PASSES", 3))
    startups: int = int(_num("BENCH_STARTUPS", 3))
    startup_events: int = int(_num("BENCH_STARTUP_EVENTS", 1000))
    sweeps: int = int(_num("BENCH_SWEEPS", 5))


_T0 = time.perf_counter()


def progress(text: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.1f}s] {text}", file=sys.stderr, flush=True)


async def measure_load(settings: Settings, workdir: Path):
    connector = Connector()
    await connector.start()
    procs = {"bare": servers.bare(workdir), "echo": servers.echo(workdir),
             "bot": servers.bot(workdir, workdir / "bot-data")}
    top = max(settings.concurrency)
    names = municipality_names(max(top, 8))
    # The same activities for every variant: one slot list each, so the bot's mark/undo pairing per
    # conversation is not disturbed by the other variants' runs.
    slots = {v: [Slot(i, name) for i, name in enumerate(names)] for v in VARIANTS}
    summaries, rss = {}, []
    try:
        for server in procs.values():
            server.start()
        for server in procs.values():
            await server.wait_ready()
        progress("servers up: " + ", ".join(f"{s.name} pid {s.pid} :{s.port}" for s in procs.values()))
        async with load.client(top) as session:
            await load.register(session, procs["bot"], connector, slots["bot"])
            for variant in VARIANTS:
                await load.drive(session, procs[variant], connector, slots[variant], min(8, top), settings.warmup,
                                 check_text=variant == "bot")
            runs: dict[tuple[str, int], list[load.Run]] = {}
            # Anything else busy on the machine skews every figure: measure it rather than hope.
            pids = [os.getpid()] + [s.pid for s in procs.values()]
            ours_before, busy_before, wall_before = (sum(servers.cpu_ms(p) for p in pids), servers.machine_busy_ms(),
                                                     time.perf_counter())
            for round_no in range(settings.rounds):
                for ci, c in enumerate(settings.concurrency):
                    shift = (round_no + ci) % len(VARIANTS)  # alternate who goes first
                    for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                        run = await load.drive(session, procs[variant], connector, slots[variant], c,
                                               settings.requests, check_text=variant == "bot")
                        runs.setdefault((variant, c), []).append(run)
                        progress(f"round {round_no + 1}/{settings.rounds} c={c:<3} {variant:<5} "
                                 f"{run.requests / run.elapsed:7.0f} act/s {run.cpu_ms / run.requests:6.2f} ms CPU/act"
                                 + (f"  missing {run.missing} wrong {run.wrong} errors {run.errors}"
                                    if run.missing or run.wrong or run.errors else ""))
            summaries = {key: load.Summary.of(value) for key, value in runs.items()}
            others = (servers.machine_busy_ms() - busy_before) - (sum(servers.cpu_ms(p) for p in pids) - ours_before)
            noise = max(0.0, others) / ((time.perf_counter() - wall_before) * 1000)  # in cores
            bot = procs["bot"]
            rss_runs = []
            for checkpoint in (settings.rss_activities // 2, settings.rss_activities):
                if bot.activities < checkpoint:
                    progress(f"bot: {bot.activities} activities so far, on to {checkpoint} for RSS")
                    rss_runs.append(await load.drive(session, bot, connector, slots["bot"], min(8, top),
                                                     checkpoint - bot.activities, check_text=True))
                rss.append((bot.activities, servers.rss_mb(bot.pid)))
                progress(f"bot RSS after {bot.activities} activities: {rss[-1][1]:.1f} MB")
            rss_problems = sum(r.missing + r.wrong + r.errors for r in rss_runs)
    finally:
        for server in procs.values():
            server.stop()
        await connector.stop()
    return summaries, rss, rss_problems, noise


async def main() -> int:
    settings = Settings()
    workdir = Path(tempfile.mkdtemp(prefix="kombit-bench-"))
    progress(f"settings: {settings}; work dir {workdir}")
    try:
        progress("understanding over the corpora")
        understanding = micro.understanding(settings.understand_passes)
        progress("mark-done: checking the audit generator against TinyStore, then timing set_task")
        micro.check_generated(workdir)
        marks = await micro.mark_done(list(settings.audit_events), settings.mark_samples, workdir)
        progress("start-up")
        startups = await micro.startup(settings.startups, workdir)
        startup_with_data = None
        if settings.startup_events:
            startup_with_data = (settings.startup_events,
                                 (await micro.startup(1, workdir, settings.startup_events))[0])
        nudge_sweep = None
        if settings.sweeps:
            progress("nudge sweep: 98 municipalities × 3 conversations, all due")
            nudge_sweep = await sweep.measure(settings.sweeps, workdir, progress)
        progress("load")
        summaries, rss, rss_problems, noise = await measure_load(settings, workdir)
    except Exception:
        progress(f"failed; server logs are kept in {workdir}")
        raise
    elapsed = time.perf_counter() - _T0

    problems = sum(s.missing + s.wrong + s.errors for s in summaries.values()) + rss_problems
    problems += len(nudge_sweep.problems) if nudge_sweep else 0
    out = [f"Benchmark — {os.cpu_count()} cores, Python {sys.version.split()[0]}, {settings.rounds} rounds × "
           f"{settings.requests} activities per variant and concurrency; CPU is the server process's only",
           "bot mix: " + " / ".join(f"«{t}»" for t, _ in MIX)
           + "  (bare and echo get the same activities)", "",
           report.load_table(summaries, list(settings.concurrency)),
           "(act/s: activities per second; p50/p95/p99: POST to answer, reply delivered; CPU: server process "
           "user+system from /proc; replies: answered/sent, !N = errors or marks that did not take effect)", "",
           f"other work on the machine (processes, kernel threads) used {noise:.0%} of one core during the load rounds"
           + (" — the machine was not quiet: rerun for figures to compare" if noise > 0.15 else ""),
           "replies: " + ("every request answered, every mark and undo took effect" if not problems else
                          f"{problems} requests without a reply, with an error, or a mark that did not take effect"),
           "",
           f"understanding: {understanding.utterances} messages (first corpus and held-out set), first time seen: median "
           f"{understanding.median_ms:.3f} ms, p95 {understanding.p95_ms:.3f} ms, p99 {understanding.p99_ms:.3f} ms, "
           f"slowest {understanding.max_ms:.2f} ms "
           f"«{understanding.slowest}»; seen before (Understander's cache): median "
           f"{understanding.repeat_median_ms * 1000:.1f} µs"]
    for m in marks:
        out.append(f"mark-done with {m.events:>6} audit events stored: median {m.median_ms:6.2f} ms, "
                   f"p95 {m.p95_ms:6.2f} ms  (its municipality's file {m.file_kb:.0f} kB, audit.jsonl {m.audit_mb:.1f} MB)")
    out.append(nudge_sweep.line() if nudge_sweep else "nudge sweep (98 × 3, all due): skipped (BENCH_SWEEPS=0)")
    out.append(f"start-up to 200 on /healthz: median {statistics.median(startups):.2f} s of "
               + ", ".join(f"{s:.2f}" for s in startups) + " s (fresh data dir)"
               + (f"; {startup_with_data[1]:.2f} s with {startup_with_data[0]} audit events stored"
                  if startup_with_data else ""))
    out.append("bot RSS: " + ", ".join(f"{mb:.1f} MB after {n} activities" for n, mb in rss))
    out += ["", "targets:"]
    out += [t.line() for t in report.targets(summaries, marks, understanding, startups, rss, settings.rss_limit_mb,
                                             settings.rss_growth_mb, startup_with_data, nudge_sweep)]
    out.append(f"\n(total {elapsed:.0f} s)")
    print("\n".join(out), flush=True)
    shutil.rmtree(workdir, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
