"""Formatting: the one load table (with bot/bare and bot/echo ratios), the other figures, PASS/FAIL.

Every ratio is computed from figures measured in this run, never from constants.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass

from bench.load import Summary
from bench.micro import MarkDone, Understanding
from bench.sweep import SweepFigures, connections

VARIANTS = ("bare", "echo", "bot")


def _count(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def load_table(summaries: dict[tuple[str, int], Summary], concurrencies: list[int]) -> str:
    head = (f"{'variant':<8}{'conc':>5}{'act/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'CPU ms/act':>12}"
            f"{'replies':>13}  │ {'bot/bare: CPU':>13}{'act/s':>8}{'p99':>8}  │ {'bot/echo: CPU':>13}{'act/s':>8}{'p99':>8}")
    lines = [head, "─" * len(head)]
    for c in concurrencies:
        for variant in VARIANTS:
            s = summaries[(variant, c)]
            answered = s.requests - s.missing
            replies = f"{answered}/{s.requests}" + ("" if not (s.wrong or s.errors) else f" !{s.wrong + s.errors}")
            line = (f"{variant:<8}{c:>5}{s.per_second:>9.0f}{s.p50_ms:>9.2f}{s.p95_ms:>9.2f}{s.p99_ms:>9.2f}"
                    f"{s.cpu_ms_per_activity:>12.2f}{replies:>13}  │")
            if variant == "bot":
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


def targets(summaries: dict[tuple[str, int], Summary], marks: list[MarkDone], understanding: Understanding,
            startups: list[float], rss: list[tuple[int, float]], rss_limit_mb: float, rss_growth_mb: float,
            startup_with_data: tuple[int, float] | None, sweep: SweepFigures | None = None) -> list[Target]:
    out = []
    bot_cpu, bare_cpu = pooled_cpu(summaries, "bot"), pooled_cpu(summaries, "bare")
    r = _ratio(bot_cpu, bare_cpu)
    out.append(Target("bot CPU/activity ≤ 3× bare", r <= 3,
                      f"{bot_cpu:.2f} vs {bare_cpu:.2f} ms = {r:.1f}× (all concurrencies pooled)"))
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
    by_size = {m.events: m for m in marks}
    largest = max(by_size) if by_size else 0
    if 0 in by_size and largest > 0:
        r = _ratio(by_size[largest].median_ms, by_size[0].median_ms)
        out.append(Target(f"mark-done at {_count(largest)} ≤ 1.5× at 0", r <= 1.5,
                          f"{by_size[largest].median_ms:.2f} vs {by_size[0].median_ms:.2f} ms = {r:.1f}×"))
    else:
        out.append(Target("mark-done at 100k ≤ 1.5× at 0", None, "needs sizes 0 and a larger one"))
    out.append(Target("understanding ≤ 0.5 ms median (uncached)", understanding.median_ms <= 0.5,
                      f"{understanding.median_ms:.3f} ms"))
    out.append(Target("understanding ≤ 5 ms p99 (uncached)", understanding.p99_ms <= 5.0,
                      f"{understanding.p99_ms:.3f} ms"))
    if sweep is not None:
        out.append(sweep_target(sweep))
    start = statistics.median(startups)
    out.append(Target("start-up ≤ 2 s (fresh data dir)", start <= 2, f"{start:.2f} s median of {len(startups)}"))
    if startup_with_data:
        events, seconds = startup_with_data
        out.append(Target(f"start-up ≤ 2 s ({_count(events)} audit events stored)", seconds <= 2, f"{seconds:.2f} s, once"))
    if len(rss) >= 2:
        (n1, mb1), (n2, mb2) = rss[-2], rss[-1]
        growth = mb2 - mb1
        out.append(Target(f"RSS after {_count(n2)} ≤ {rss_limit_mb:.0f} MB", mb2 <= rss_limit_mb, f"{mb2:.1f} MB"))
        out.append(Target(f"RSS not growing {_count(n1)}→{_count(n2)} (≤ {rss_growth_mb:g} MB)",
                          growth <= rss_growth_mb,
                          f"{growth:+.1f} MB ({growth * 1024 / max(1, n2 - n1) * 1000:+.0f} kB per 1k activities)"))
    return out


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
    return Target(f"nudge sweep (98 × 3, all due) ≤ {SWEEP_LIMIT_S:g} s over one keep-alive session", ok, detail)
