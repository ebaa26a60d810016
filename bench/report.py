"""Formatting: the one load table (with bot/bare and bot/echo ratios for the bot on either store), the other
figures, TinyDB and PostgreSQL side by side, PASS/FAIL.

Every ratio is computed from figures measured in this run, never from constants.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from bench.history import HistoryFigures
from bench.load import Summary
from bench.micro import MarkDone, Understanding
from bench.sweep import SweepFigures, connections

VARIANTS = ("bare", "echo", "bot", "bot-pg")  # bot: the data dir (TinyDB); bot-pg: PostgreSQL
BOTS = ("bot", "bot-pg")
BACKEND = {"bot": "TinyDB", "bot-pg": "PostgreSQL"}
CPU_LIMIT = {"bot": 3.0, "bot-pg": 4.0}  # bot CPU per activity, × bare (issue 14)
MARK_LIMIT = 1.5  # mark-done at the largest size, × at 0
HISTORY_LIMIT_MS = 20.0  # "historik" and "hvem markerede X?", median, with BENCH_HISTORY_EVENTS stored
STARTUP_LIMIT_S = 2.0


def _count(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def load_table(summaries: dict[tuple[str, int], Summary], concurrencies: list[int]) -> str:
    variants = [v for v in VARIANTS if any((v, c) in summaries for c in concurrencies)]
    head = (f"{'variant':<8}{'conc':>5}{'act/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'CPU ms/act':>12}"
            f"{'replies':>13}  │ {'bot/bare: CPU':>13}{'act/s':>8}{'p99':>8}  │ {'bot/echo: CPU':>13}{'act/s':>8}{'p99':>8}")
    lines = [head, "─" * len(head)]
    for c in concurrencies:
        for variant in variants:
            s = summaries[(variant, c)]
            answered = s.requests - s.missing
            replies = f"{answered}/{s.requests}" + ("" if not (s.wrong or s.errors) else f" !{s.wrong + s.errors}")
            line = (f"{variant:<8}{c:>5}{s.per_second:>9.0f}{s.p50_ms:>9.2f}{s.p95_ms:>9.2f}{s.p99_ms:>9.2f}"
                    f"{s.cpu_ms_per_activity:>12.2f}{replies:>13}  │")
            if variant in BOTS:
                for base in ("bare", "echo"):
                    b = summaries[(base, c)]
                    line += (f" {_ratio(s.cpu_ms_per_activity, b.cpu_ms_per_activity):>12.2f}×"
                             f"{_ratio(s.per_second, b.per_second):>7.2f}×{_ratio(s.p99_ms, b.p99_ms):>7.2f}×  │")
            lines.append(line)
        lines.append("")
    return "\n".join(lines).rstrip()


def pooled_cpu(summaries: dict[tuple[str, int], Summary], variant: str) -> float:
    """CPU ms per activity over every concurrency: total server CPU / total activities."""
    rows = [s for (v, _), s in summaries.items() if v == variant]
    return sum(s.cpu_ms_per_activity * s.requests for s in rows) / sum(s.requests for s in rows)


@dataclass
class Target:
    name: str
    ok: bool | None  # None: not measured in this run (e.g. concurrency 8 left out)
    detail: str

    def line(self) -> str:
        verdict = {True: "PASS", False: "FAIL", None: "n/a "}[self.ok]
        return f"  {verdict}  {self.name:<44} {self.detail}"


@dataclass
class Results:
    """Everything one run measured; None or empty where a part was skipped (BENCH_* sizes 0, BENCH_POSTGRES=0)."""

    summaries: dict[tuple[str, int], Summary]
    marks: list[MarkDone]
    understanding: Understanding
    startups: list[float]  # TinyDB, fresh data dir, to /healthz
    rss: list[tuple[int, float]]  # TinyDB bot: (activities, MB)
    rss_limit_mb: float
    rss_growth_mb: float
    startup_with_data: tuple[int, float] | None = None
    sweeps: list[SweepFigures] = field(default_factory=list)
    pg_startups: list[tuple[float, float]] = field(default_factory=list)  # fresh database: (/healthz, /readyz)
    history: list[HistoryFigures] = field(default_factory=list)
    pg_cpu: dict[int, float] = field(default_factory=dict)  # concurrency -> PostgreSQL's CPU ms/act in bot-pg's runs
    pg_rss: tuple[int, float] | None = None  # bot-pg: (activities, MB) after the load rounds
    postgres: str = ""  # the server's version; empty: PostgreSQL not measured
    noise: float = 0.0  # other work on the machine during the load rounds, in cores
    noise_all: float = 0.0  # the same over the whole run
    rss_problems: int = 0  # requests of the RSS runs without a reply, with an error, or a mark not taken


def _marks(marks: list[MarkDone], backend: str) -> dict[int, MarkDone]:
    return {m.events: m for m in marks if m.backend == backend}


def _history(results: Results, backend: str) -> HistoryFigures | None:
    return next((h for h in results.history if h.backend == backend), None)


def _sweep(results: Results, backend: str) -> SweepFigures | None:
    return next((s for s in results.sweeps if s.backend == backend), None)


def _pg_cpu_pooled(results: Results) -> float | None:
    rows = [(c, s.requests) for (v, c), s in results.summaries.items() if v == "bot-pg" and c in results.pg_cpu]
    if not rows:
        return None
    return sum(results.pg_cpu[c] * n for c, n in rows) / sum(n for _, n in rows)


def targets(results: Results) -> list[Target]:
    summaries = results.summaries
    out = []
    bare_cpu = pooled_cpu(summaries, "bare")
    for bot in BOTS:
        if not any(v == bot for v, _ in summaries):
            out.append(Target(f"{bot} CPU/activity ≤ {CPU_LIMIT[bot]:g}× bare", None, "not measured"))
            continue
        bot_cpu = pooled_cpu(summaries, bot)
        r = _ratio(bot_cpu, bare_cpu)
        detail = f"{bot_cpu:.2f} vs {bare_cpu:.2f} ms = {r:.1f}× (all concurrencies pooled)"
        if bot == "bot-pg" and _pg_cpu_pooled(results) is not None:
            detail += f"; PostgreSQL's own {_pg_cpu_pooled(results):.2f} ms/act besides"
        out.append(Target(f"{bot} ({BACKEND[bot]}) CPU/activity ≤ {CPU_LIMIT[bot]:g}× bare", r <= CPU_LIMIT[bot], detail))
    if ("bot", 8) in summaries:
        bot8, echo8, bare8 = summaries[("bot", 8)], summaries[("echo", 8)], summaries[("bare", 8)]
        r = _ratio(bot8.per_second, echo8.per_second)
        out.append(Target("bot throughput at c=8 ≥ 10× echo", r >= 10,
                          f"{bot8.per_second:.0f} vs {echo8.per_second:.0f} act/s = {r:.1f}×"))
        r = _ratio(bot8.p99_ms, bare8.p99_ms)
        out.append(Target("bot p99 at c=8 ≤ 4× bare p99", r <= 4,
                          f"{bot8.p99_ms:.1f} vs {bare8.p99_ms:.1f} ms = {r:.1f}×"))
    else:
        out += [Target("bot throughput at c=8 ≥ 10× echo", None, "c=8 not run"),
                Target("bot p99 at c=8 ≤ 4× bare p99", None, "c=8 not run")]
    for backend in ("TinyDB", "PostgreSQL"):
        by_size = _marks(results.marks, backend)
        largest = max(by_size) if by_size else 0
        if 0 in by_size and largest > 0:
            r = _ratio(by_size[largest].median_ms, by_size[0].median_ms)
            out.append(Target(f"mark-done at {_count(largest)} ≤ {MARK_LIMIT:g}× at 0, {backend}", r <= MARK_LIMIT,
                              f"{by_size[largest].median_ms:.2f} vs {by_size[0].median_ms:.2f} ms = {r:.1f}×"))
        elif backend == "TinyDB" or results.postgres:
            out.append(Target(f"mark-done at 100k ≤ {MARK_LIMIT:g}× at 0, {backend}", None,
                              "needs sizes 0 and a larger one"))
    for backend in ("TinyDB", "PostgreSQL"):
        h = _history(results, backend)
        if h is None:
            continue
        for which, label in (("all", "«historik»"), ("task", "«hvem markerede X?»")):
            turn, audit = h.median(h.turn_ms[which]), h.median(h.audit_ms[which])
            ok = turn <= HISTORY_LIMIT_MS and not h.problems
            out.append(Target(f"{label} at {_count(h.events)} ≤ {HISTORY_LIMIT_MS:g} ms median, {backend}", ok,
                              f"turn {turn:.2f} ms median (p95 {h.p95(h.turn_ms[which]):.2f}) of "
                              f"{len(h.turn_ms[which])}; store.audit {audit:.3f} ms"
                              + (f"; {len(h.problems)} wrong replies" if h.problems else "")))
    out.append(Target("understanding ≤ 0.5 ms median (uncached)", results.understanding.median_ms <= 0.5,
                      f"{results.understanding.median_ms:.3f} ms"))
    out.append(Target("understanding ≤ 5 ms p99 (uncached)", results.understanding.p99_ms <= 5.0,
                      f"{results.understanding.p99_ms:.3f} ms"))
    out += [sweep_target(sweep) for sweep in results.sweeps]
    start = statistics.median(results.startups)
    out.append(Target(f"start-up ≤ {STARTUP_LIMIT_S:g} s (fresh data dir)", start <= STARTUP_LIMIT_S,
                      f"{start:.2f} s median of {len(results.startups)}"))
    if results.startup_with_data:
        events, seconds = results.startup_with_data
        out.append(Target(f"start-up ≤ {STARTUP_LIMIT_S:g} s ({_count(events)} audit events stored)",
                          seconds <= STARTUP_LIMIT_S, f"{seconds:.2f} s, once"))
    for h in results.history:
        if not h.healthz_s:
            continue
        healthz, readyz = statistics.median(h.healthz_s), statistics.median(h.readyz_s)
        if h.backend == "TinyDB":  # /healthz, the snapshot in place: the normal restart
            out.append(Target(f"start-up ≤ {STARTUP_LIMIT_S:g} s ({_count(h.events)} events, snapshot), TinyDB",
                              healthz <= STARTUP_LIMIT_S,
                              f"/healthz {healthz:.2f} s median of {len(h.healthz_s)} (/readyz {readyz:.2f} s)"))
        else:  # /readyz: the database reached
            out.append(Target(f"start-up ≤ {STARTUP_LIMIT_S:g} s ({_count(h.events)} events), PostgreSQL",
                              max(healthz, readyz) <= STARTUP_LIMIT_S,
                              f"/healthz {healthz:.2f} s, /readyz {readyz:.2f} s, medians of {len(h.healthz_s)}"))
    if len(results.rss) >= 2:
        (n1, mb1), (n2, mb2) = results.rss[-2], results.rss[-1]
        growth = mb2 - mb1
        out.append(Target(f"RSS after {_count(n2)} ≤ {results.rss_limit_mb:.0f} MB", mb2 <= results.rss_limit_mb,
                          f"{mb2:.1f} MB"))
        out.append(Target(f"RSS not growing {_count(n1)}→{_count(n2)} (≤ {results.rss_growth_mb:g} MB)",
                          growth <= results.rss_growth_mb,
                          f"{growth:+.1f} MB ({growth * 1024 / max(1, n2 - n1) * 1000:+.0f} kB per 1k activities)"))
    return out


def _ms(value: float, digits: int = 2) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.{digits}f} ms"


def _at(s: Summary | None) -> str:
    return "—" if s is None else f"{s.per_second:.0f} act/s, p99 {s.p99_ms:.1f} ms"


def _mark(by_size: dict[int, MarkDone], events: int) -> str:
    m = by_size.get(events)
    if m is None:
        return "—"
    text = f"{m.median_ms:.2f} ms (p95 {m.p95_ms:.2f})"
    if events and 0 in by_size:
        text += f" = {_ratio(m.median_ms, by_size[0].median_ms):.1f}×"
    return text


def side_by_side(results: Results) -> str:
    """TinyDB and PostgreSQL in two columns, each row one figure measured on both in this run."""
    rows: list[tuple[str, str, str, str]] = []
    summaries = results.summaries
    bare_cpu = pooled_cpu(summaries, "bare") if any(v == "bare" for v, _ in summaries) else 0.0

    def cpu(bot: str) -> str:
        if not any(v == bot for v, _ in summaries):
            return "—"
        value = pooled_cpu(summaries, bot)
        return f"{value:.2f} ms = {_ratio(value, bare_cpu):.2f}× bare"

    rows.append(("bot CPU/activity, pooled (bare " + f"{bare_cpu:.2f} ms)", cpu("bot"), cpu("bot-pg"),
                 f"≤ {CPU_LIMIT['bot']:g}× / ≤ {CPU_LIMIT['bot-pg']:g}×"))
    pg_cpu = _pg_cpu_pooled(results)
    if pg_cpu is not None:
        both = pooled_cpu(summaries, "bot-pg") + pg_cpu
        rows.append(("  + the PostgreSQL server's own CPU", "—",
                     f"+{pg_cpu:.2f} ms = {_ratio(both, bare_cpu):.2f}× bare", "(information)"))
    for c in sorted({c for _, c in summaries}):
        rows.append((f"load at c={c}", _at(summaries.get(("bot", c))), _at(summaries.get(("bot-pg", c))), ""))
    tiny, pg = _marks(results.marks, "TinyDB"), _marks(results.marks, "PostgreSQL")
    for events in sorted(set(tiny) | set(pg)):
        rows.append((f"mark-done, {_count(events)} events stored, median", _mark(tiny, events), _mark(pg, events),
                     f"≤ {MARK_LIMIT:g}× at 0" if events == max(set(tiny) | set(pg)) and events else ""))
    h_tiny, h_pg = _history(results, "TinyDB"), _history(results, "PostgreSQL")
    if h_tiny or h_pg:
        n = _count((h_tiny or h_pg).events)
        for which, label in (("all", "«historik»"), ("task", "«hvem markerede Udpeg projektleder?»")):
            def turn(h: HistoryFigures | None, which=which) -> str:
                if h is None:
                    return "—"
                return f"{_ms(h.median(h.turn_ms[which]))} (p95 {h.p95(h.turn_ms[which]):.2f})"
            rows.append((f"{label}, {n} events, whole turn", turn(h_tiny), turn(h_pg), f"≤ {HISTORY_LIMIT_MS:g} ms"))
        for which, label in (("all", "store.audit(code)"), ("task", "store.audit(code, task)")):
            def audit(h: HistoryFigures | None, which=which) -> str:
                return "—" if h is None else f"{_ms(h.median(h.audit_ms[which]), 3)} (p95 {h.p95(h.audit_ms[which]):.3f})"
            rows.append((f"  {label}, {n} events, median", audit(h_tiny), audit(h_pg), "(its part of the turn)"))

        def start(h: HistoryFigures | None) -> str:
            if h is None or not h.healthz_s:
                return "—"
            return (f"/healthz {statistics.median(h.healthz_s):.2f} s, /readyz {statistics.median(h.readyz_s):.2f} s")
        rows.append((f"start-up, {n} events (TinyDB: snapshot in place)", start(h_tiny), start(h_pg),
                     f"≤ {STARTUP_LIMIT_S:g} s"))
        rows.append((f"  first start, {n} events, no snapshot", f"{h_tiny.first_start_s:.1f} s (replays all)"
                     if h_tiny and h_tiny.first_start_s is not None else "—", "—", "(information)"))
        rows.append((f"  {n} events stored by the bench", h_tiny.filled if h_tiny else "—", h_pg.filled if h_pg else "—",
                     "(information)"))
    fresh_pg = "—"
    if results.pg_startups:
        fresh_pg = (f"/healthz {statistics.median(h for h, _ in results.pg_startups):.2f} s, "
                    f"/readyz {statistics.median(r for _, r in results.pg_startups):.2f} s")
    rows.append(("start-up, fresh data dir / empty database", f"/healthz {statistics.median(results.startups):.2f} s",
                 fresh_pg, f"≤ {STARTUP_LIMIT_S:g} s"))

    def sweep(backend: str) -> str:
        figures = _sweep(results, backend)
        return "—" if figures is None else f"{figures.median_s:.2f} s, {figures.nudges} sent, {figures.connections} conn."
    rows.append(("nudge sweep 98 × 3, all due, median", sweep("TinyDB"), sweep("PostgreSQL"), f"≤ {SWEEP_LIMIT_S:g} s"))
    tiny_rss = f"{results.rss[-1][1]:.1f} MB after {results.rss[-1][0]} act." if results.rss else "—"
    pg_rss = f"{results.pg_rss[1]:.1f} MB after {results.pg_rss[0]} act." if results.pg_rss else "—"
    rows.append(("bot RSS", tiny_rss, pg_rss, ""))
    widths = [max(len(r[i]) for r in [*rows, ("", "TinyDB (data dir)", "PostgreSQL", "target")]) for i in range(4)]
    head = (f"{'':<{widths[0]}}  {'TinyDB (data dir)':<{widths[1]}}  │ {'PostgreSQL':<{widths[2]}}  │ target")
    lines = [head, "─" * len(head)]
    lines += [f"{a:<{widths[0]}}  {b:<{widths[1]}}  │ {c:<{widths[2]}}  │ {d}".rstrip() for a, b, c, d in rows]
    return "\n".join(lines)


SWEEP_LIMIT_S = 3.0


def sweep_target(sweep: SweepFigures) -> Target:
    """Fast enough, over a handful of kept-alive connections (not one per message), and every nudge
    delivered once to its own conversation: a fast sweep that lost or doubled nudges does not pass."""
    kept_alive = sweep.connections <= sweep.connection_limit
    ok = sweep.median_s <= SWEEP_LIMIT_S and kept_alive and not sweep.problems
    detail = (f"{sweep.median_s:.2f} s median of {len(sweep.runs)}, {sweep.nudges} nudges, "
              f"{connections(sweep.connections)} (limit {sweep.connection_limit})")
    if sweep.problems:
        detail += f"; {len(sweep.problems)} delivery problems"
    return Target(f"nudge sweep (98 × 3, all due) ≤ {SWEEP_LIMIT_S:g} s, one keep-alive session, {sweep.backend}",
                  ok, detail)
