"""`python -m bench` (`make bench`): load table, micro-benchmarks, targets, for the bot on each store (the data
dir, TinyDB, and PostgreSQL 15 on loopback: a throwaway server from tests/postgres_server.py, fsync on, stopped
at the end whatever happens), side by side. Sized by the environment:

  BENCH_REQUESTS=300        activities per variant, per concurrency, per round
  BENCH_ROUNDS=3            rounds; each round runs every concurrency, variants in rotating order
  BENCH_CONCURRENCY=1,8,32  concurrency levels
  BENCH_WARMUP=60           unmeasured activities per server first (lazy imports, caches, connections)
  BENCH_RSS_ACTIVITIES=10000  RSS of the bot read at half and at all of this many activities
  BENCH_RSS_LIMIT_MB=150    target for RSS at the end
  BENCH_RSS_GROWTH_MB=2     tolerance for "not growing" between the two readings (allocator noise)
  BENCH_AUDIT_EVENTS=0,10000,100000  audit-trail sizes for mark-done (each store)
  BENCH_MARK_SAMPLES=30     set_task calls timed per size
  BENCH_UNDERSTAND_PASSES=3 passes over the corpus
  BENCH_STARTUPS=3          fresh-data-dir (and empty-database) start-ups timed
  BENCH_STARTUP_EVENTS=1000 one more start-up on a data dir with this many audit events (0: skip)
  BENCH_SWEEPS=5            timed nudge sweeps (98 × 3 conversations, all due), each on a fresh data dir or
                            database (0: skip)
  BENCH_HISTORY_EVENTS=1000000  events stored for the history and start-up figures (0: skip; bench/history.py)
  BENCH_HISTORY_STARTUPS=3  start-ups timed on that data dir (snapshot in place) and that database
  BENCH_HISTORY_SAMPLES=50  "historik" and "hvem markerede …?" turns (and store.audit calls) timed, each
  BENCH_POSTGRES=1          0: the data dir only (no PostgreSQL server, no bot-pg variant)

A smoke run: BENCH_REQUESTS=100 BENCH_ROUNDS=1 BENCH_WARMUP=20 BENCH_RSS_ACTIVITIES=600 BENCH_AUDIT_EVENTS=0,20000
BENCH_MARK_SAMPLES=10 BENCH_UNDERSTAND_PASSES=1 BENCH_STARTUPS=1 BENCH_SWEEPS=1 BENCH_HISTORY_EVENTS=20000
BENCH_HISTORY_STARTUPS=1 BENCH_HISTORY_SAMPLES=10 python -m bench

Progress goes to stderr, the report to stdout. Only 127.0.0.1 is ever contacted.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import history, load, micro, report, servers, sweep
from bench.activities import MIX, Slot, municipality_names
from bench.connector import Connector
from bench.pg import Postgres, check_load
from bench.report import BOTS, VARIANTS


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
    history_events: int = int(_num("BENCH_HISTORY_EVENTS", 1_000_000))
    history_startups: int = int(_num("BENCH_HISTORY_STARTUPS", 3))
    history_samples: int = int(_num("BENCH_HISTORY_SAMPLES", 50))
    postgres: bool = os.environ.get("BENCH_POSTGRES", "1") != "0"


_T0 = time.perf_counter()


def progress(text: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.1f}s] {text}", file=sys.stderr, flush=True)


async def measure_load(settings: Settings, workdir: Path, pg: Postgres | None):
    """The load rounds: bare, echo, the bot on the data dir and, with `pg`, the bot on PostgreSQL (bot-pg),
    the same activities in the same rotation. Returns the summaries, the bot's RSS readings, the problems in
    the RSS runs, the machine's other work (cores), PostgreSQL's CPU per bot-pg activity by concurrency, and
    bot-pg's RSS after the rounds."""
    connector = Connector()
    await connector.start()
    variants = VARIANTS if pg else tuple(v for v in VARIANTS if v != "bot-pg")
    procs = {"bare": servers.bare(workdir), "echo": servers.echo(workdir),
             "bot": servers.bot(workdir, workdir / "bot-data")}
    if pg:
        _, url = pg.database("load")
        procs["bot-pg"] = servers.bot(workdir, workdir / "bot-pg-data", database_url=url)
    top = max(settings.concurrency)
    names = municipality_names(max(top, 8))
    # The same activities for every variant: one slot list each, so each bot's mark/undo pairing per
    # conversation is not disturbed by the other variants' runs.
    slots = {v: [Slot(i, name) for i, name in enumerate(names)] for v in variants}
    summaries, rss, pg_cpu, pg_rss = {}, [], {}, None
    pg_cpu_ms = pg.cpu_ms if pg else (lambda: 0.0)
    try:
        for server in procs.values():
            server.start()
        for server in procs.values():
            await server.wait_ready()
        progress("servers up: " + ", ".join(f"{s.name} pid {s.pid} :{s.port}" for s in procs.values()))
        async with load.client(top) as session:
            for bot in BOTS:
                if bot in procs:
                    await load.register(session, procs[bot], connector, slots[bot])
            for variant in variants:
                await load.drive(session, procs[variant], connector, slots[variant], min(8, top), settings.warmup,
                                 check_text=variant in BOTS)
            runs: dict[tuple[str, int], list[load.Run]] = {}
            pg_spent: dict[int, float] = {}
            # Anything else busy on the machine skews every figure: measure it rather than hope.
            pids = [os.getpid()] + [s.pid for s in procs.values()]

            def ours() -> float:
                return sum(servers.cpu_ms(p) for p in pids) + pg_cpu_ms()
            ours_before, busy_before, wall_before = ours(), servers.machine_busy_ms(), time.perf_counter()
            for round_no in range(settings.rounds):
                for ci, c in enumerate(settings.concurrency):
                    shift = (round_no + ci) % len(variants)  # alternate who goes first
                    for variant in variants[shift:] + variants[:shift]:
                        pg_before = pg_cpu_ms() if variant == "bot-pg" else 0.0
                        run = await load.drive(session, procs[variant], connector, slots[variant], c,
                                               settings.requests, check_text=variant in BOTS)
                        extra = ""
                        if variant == "bot-pg":
                            pg_spent[c] = pg_spent.get(c, 0.0) + pg_cpu_ms() - pg_before
                            extra = f" + PostgreSQL {(pg_cpu_ms() - pg_before) / run.requests:5.2f}"
                        runs.setdefault((variant, c), []).append(run)
                        progress(f"round {round_no + 1}/{settings.rounds} c={c:<3} {variant:<6} "
                                 f"{run.requests / run.elapsed:7.0f} act/s {run.cpu_ms / run.requests:6.2f} ms CPU/act"
                                 + extra
                                 + (f"  missing {run.missing} wrong {run.wrong} errors {run.errors}"
                                    if run.missing or run.wrong or run.errors else ""))
            summaries = {key: load.Summary.of(value) for key, value in runs.items()}
            pg_cpu = {c: spent / summaries[("bot-pg", c)].requests for c, spent in pg_spent.items()}
            others = (servers.machine_busy_ms() - busy_before) - (ours() - ours_before)
            noise = max(0.0, others) / ((time.perf_counter() - wall_before) * 1000)  # in cores
            if "bot-pg" in procs:
                pg_rss = (procs["bot-pg"].activities, servers.rss_mb(procs["bot-pg"].pid))
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
    return summaries, rss, rss_problems, noise, pg_cpu, pg_rss


async def main() -> int:
    settings = Settings()
    workdir = Path(tempfile.mkdtemp(prefix="kombit-bench-"))
    progress(f"settings: {settings}; work dir {workdir}")
    progress(f"servers run the code in {servers.check_code()}")
    pg = Postgres() if settings.postgres else None
    busy_before, pg_cpu = servers.machine_busy_ms(), 0.0
    # SIGTERM (a CI job cancelled, `timeout`) ends the run like Ctrl-C does: through the finally below, so the
    # PostgreSQL server and the bench's own servers are stopped.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    try:
        if pg:
            started = time.perf_counter()
            pg.start()
            progress(f"{pg.version} on 127.0.0.1:{pg.server.port} (fsync on), up in {time.perf_counter() - started:.1f} s")
        results = await measure(settings, workdir, pg)
        pg_cpu = pg.cpu_ms() if pg else 0.0
    except BaseException:
        progress(f"failed; server logs are kept in {workdir}")
        raise
    finally:
        if pg:
            pg.stop()
            progress("PostgreSQL stopped")
    elapsed = time.perf_counter() - _T0
    # Everything the bench ran is this process or its reaped children (the servers), or the PostgreSQL server.
    ours = sum(os.times()[:4]) * 1000 + pg_cpu
    results.noise_all = max(0.0, servers.machine_busy_ms() - busy_before - ours) / (elapsed * 1000)
    print(render(settings, results, elapsed), flush=True)
    shutil.rmtree(workdir, ignore_errors=True)
    return 1 if problems(results) else 0


async def measure(settings: Settings, workdir: Path, pg: Postgres | None) -> report.Results:
    progress("understanding over the corpora")
    understanding = micro.understanding(settings.understand_passes)
    progress("mark-done: checking the audit generator against TinyStore"
             + (" and the PostgreSQL loader against admin migrate" if pg else "") + ", then timing set_task")
    checked = await micro.check_generated(workdir)
    if pg:
        await check_load(pg, checked, workdir)
    shutil.rmtree(checked, ignore_errors=True)
    marks = await micro.mark_done(list(settings.audit_events), settings.mark_samples, workdir, pg, progress)
    progress("start-up")
    startups = await micro.startup(settings.startups, workdir)
    startup_with_data = None
    if settings.startup_events:
        startup_with_data = (settings.startup_events, (await micro.startup(1, workdir, settings.startup_events))[0])
    pg_startups = await micro.startup_pg(settings.startups, workdir, pg) if pg else []
    histories = []
    if settings.history_events:
        connector = Connector()
        await connector.start()
        try:
            figures, data_dir = await history.tinydb(settings.history_events, settings.history_startups,
                                                     settings.history_samples, workdir, connector, progress)
            histories.append(figures)
            if pg:
                histories.append(await history.postgresql(pg, data_dir, settings.history_events,
                                                          settings.history_startups, settings.history_samples,
                                                          workdir, connector, progress))
            shutil.rmtree(data_dir, ignore_errors=True)
        finally:
            await connector.stop()
    sweeps = []
    if settings.sweeps:
        progress("nudge sweep: 98 municipalities × 3 conversations, all due")
        sweeps.append(await sweep.measure(settings.sweeps, workdir, progress))
        if pg:
            sweeps.append(await sweep.measure(settings.sweeps, workdir, progress, pg))
    progress("load")
    summaries, rss, rss_problems, noise, pg_cpu, pg_rss = await measure_load(settings, workdir, pg)
    return report.Results(summaries, marks, understanding, startups, rss, settings.rss_limit_mb,
                          settings.rss_growth_mb, startup_with_data, sweeps, pg_startups, histories, pg_cpu, pg_rss,
                          pg.version if pg else "", noise, rss_problems)


def problems(results: report.Results) -> int:
    """Requests without a reply, errors, marks that did not take effect, nudges lost or doubled, wrong history."""
    count = sum(s.missing + s.wrong + s.errors for s in results.summaries.values()) + results.rss_problems
    count += sum(len(s.problems) for s in results.sweeps)
    return count + sum(len(h.problems) for h in results.history)


def render(settings: Settings, results: report.Results, elapsed: float) -> str:
    understanding, noise, bad = results.understanding, results.noise, problems(results)
    variants = "bare, echo, bot (data dir) and bot-pg (PostgreSQL)" if results.postgres else "bare, echo and bot"
    out = [f"Benchmark — {os.cpu_count()} cores, Python {sys.version.split()[0]}, {settings.rounds} rounds × "
           f"{settings.requests} activities per variant and concurrency ({variants}); CPU is the server process's only"
           + (f"; {results.postgres} on loopback, fsync on" if results.postgres else ""),
           "bot mix: " + " / ".join(f"«{t}»" for t, _ in MIX)
           + "  (bare and echo get the same activities)", "",
           report.load_table(results.summaries, list(settings.concurrency)),
           "(act/s: activities per second; p50/p95/p99: POST to answer, reply delivered; CPU: server process "
           "user+system from /proc; replies: answered/sent, !N = errors or marks that did not take effect)"]
    if results.pg_cpu:
        out.append("PostgreSQL server's own CPU during the bot-pg runs (not in bot-pg's CPU column): "
                   + ", ".join(f"c={c} {ms:.2f}" for c, ms in sorted(results.pg_cpu.items())) + " ms/act")
    out += ["",
            f"other work on the machine (processes, kernel threads) used {noise:.0%} of one core during the load rounds"
            + f", {results.noise_all:.0%} over the whole run"
            + (" — the machine was not quiet: rerun for figures to compare"
               if max(noise, results.noise_all) > 0.15 else ""),
            "replies: " + ("every request answered, every mark and undo took effect"
                           + (", every history turn answered in full" if results.history else "") if not bad else
                           f"{bad} requests without a reply, with an error, a mark that did not take effect, or a "
                           "wrong history answer"
                           + "".join(f"; {h.backend}: {h.problems[0]}" for h in results.history if h.problems)),
            "",
            f"understanding: {understanding.utterances} messages (first corpus and held-out set), first time seen: "
            f"median {understanding.median_ms:.3f} ms, p95 {understanding.p95_ms:.3f} ms, p99 "
            f"{understanding.p99_ms:.3f} ms, slowest {understanding.max_ms:.2f} ms «{understanding.slowest}»; "
            f"seen before (Understander's cache): median {understanding.repeat_median_ms * 1000:.1f} µs"]
    for m in results.marks:
        if m.backend == "TinyDB":
            out.append(f"mark-done with {m.events:>7} audit events stored, TinyDB:     median {m.median_ms:6.2f} ms, "
                       f"p95 {m.p95_ms:6.2f} ms, CPU {m.cpu_ms:5.2f} ms  (its municipality's file {m.file_kb:.0f} kB, "
                       f"audit.jsonl {m.audit_mb:.1f} MB)")
        else:
            out.append(f"mark-done with {m.events:>7} audit events stored, PostgreSQL: median {m.median_ms:6.2f} ms, "
                       f"p95 {m.p95_ms:6.2f} ms, CPU {m.cpu_ms:5.2f} ms  (the client's; events table and its indexes "
                       f"{m.audit_mb:.1f} MB)")
    for h in results.history:
        line = (f"history with {h.events} events stored, {h.backend}: whole turn «historik» median "
                f"{h.median(h.turn_ms['all']):.2f} ms (p95 {h.p95(h.turn_ms['all']):.2f}), «hvem markerede Udpeg "
                f"projektleder?» {h.median(h.turn_ms['task']):.2f} ms (p95 {h.p95(h.turn_ms['task']):.2f}); "
                f"store.audit(code) {h.median(h.audit_ms['all']):.3f} ms, (code, task) "
                f"{h.median(h.audit_ms['task']):.3f} ms; {h.filled}")
        out.append(line)
    out += [s.line() for s in results.sweeps] or ["nudge sweep (98 × 3, all due): skipped (BENCH_SWEEPS=0)"]
    out.append(f"start-up to 200 on /healthz: median {statistics.median(results.startups):.2f} s of "
               + ", ".join(f"{s:.2f}" for s in results.startups) + " s (fresh data dir)"
               + (f"; {results.startup_with_data[1]:.2f} s with {results.startup_with_data[0]} audit events stored"
                  if results.startup_with_data else ""))
    if results.pg_startups:
        out.append("start-up on PostgreSQL, empty database: /healthz "
                   + ", ".join(f"{h:.2f}" for h, _ in results.pg_startups) + " s, /readyz "
                   + ", ".join(f"{r:.2f}" for _, r in results.pg_startups) + " s")
    for h in results.history:
        out.append(f"start-up with {h.events} events, {h.backend}"
                   + (" (snapshot in place)" if h.backend == "TinyDB" else "") + ": /healthz "
                   + ", ".join(f"{s:.2f}" for s in h.healthz_s) + " s, /readyz "
                   + ", ".join(f"{s:.2f}" for s in h.readyz_s) + " s"
                   + (f"; first start without a snapshot (replays the whole trail, information): "
                      f"{h.first_start_s:.1f} s" if h.first_start_s is not None else ""))
    out.append("bot RSS: " + ", ".join(f"{mb:.1f} MB after {n} activities" for n, mb in results.rss)
               + (f"; bot-pg: {results.pg_rss[1]:.1f} MB after {results.pg_rss[0]} activities" if results.pg_rss else ""))
    if results.postgres:
        out += ["", f"TinyDB and PostgreSQL side by side ({results.postgres}, loopback, fsync on; same run):",
                report.side_by_side(results)]
    out += ["", "targets:"]
    out += [t.line() for t in report.targets(results)]
    out.append(f"\n(total {elapsed:.0f} s)")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
