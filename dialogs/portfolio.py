"""KOMBIT's view across all municipalities: "oversigt", "hvem halter i bølge 2?", "hvilke kommuner er i
Forberedelse?", "status for Aarhus", "eksport". Only configured consultants get these answers; anyone
else gets a polite refusal and their own status."""
from __future__ import annotations

import csv
import functools
import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date

from dialogs import cards
from dialogs.assign import ROLES
from dialogs.context import Ctx
from dialogs.markdown import esc
from dialogs.progress import current_phase, is_done, milestones_of, overdue_since, phase_progress, tasks_of
from dialogs.status import status_reply
from dialogs.store import MunicipalityState
from dialogs.turn import Reply
from dialogs.understanding import Understanding

Handler = Callable[[Ctx, Understanding], Awaitable[Reply]]
LISTED = 40  # rows in a chat answer; the export has them all


@dataclass(frozen=True)
class Row:
    code: str
    name: str
    wave: str | None
    phase: int
    phase_pct: int
    overall_pct: int
    next_milestone: tuple[str, date] | None
    overdue: int  # open tasks whose deadline (tasks.yaml's `due`, counted from a milestone) has passed
    golive: date | None


def row_of(ctx: Ctx, state: MunicipalityState, today: date) -> Row:
    progress = phase_progress(ctx.content, state)
    phase = current_phase(ctx.content, state)
    done, total = sum(p.done for p in progress), sum(p.total for p in progress)
    milestones = milestones_of(ctx.content, state)
    upcoming = sorted((m.date, m.name) for m in milestones.values() if m.date >= today)
    overdue = 0
    for task in tasks_of(ctx.content, state):
        due = overdue_since(ctx.content, state, task)
        overdue += due is not None and due < today and not is_done(state, task.id)
    wave = ctx.content.project.wave_of(state.code)
    p = progress[phase - 1]
    return Row(state.code, ctx.municipality_name(state.code), wave.id if wave else None, phase,
               round(100 * p.done / p.total) if p.total else 100, round(100 * done / total) if total else 100,
               (upcoming[0][1], upcoming[0][0]) if upcoming else None, overdue,
               milestones["go-live"].date if "go-live" in milestones else None)


async def _rows(ctx: Ctx) -> list[Row]:
    today = ctx.today()
    return [row_of(ctx, state, today) for state in await ctx.store.all_municipalities()]


def consultants_only(handler: Handler) -> Handler:
    """Every municipality's progress and names are for KOMBIT's consultants, and only in a personal chat:
    anyone else is refused (with their own status), and a shared channel never sees them."""
    @functools.wraps(handler)
    async def guarded(ctx: Ctx, u: Understanding) -> Reply:
        if not ctx.consultant:
            return await _refuse(ctx)
        if ctx.turn.conversation.kind != "personal":
            return Reply(ctx.t("portfolio.personal_only"))
        return await handler(ctx, u)
    return guarded


async def _refuse(ctx: Ctx) -> Reply:
    """Not a consultant: say so, and answer with what they may see, their own status."""
    refusal = ctx.t("portfolio.refused")
    code = await ctx.municipality_code()
    if code is None:
        return Reply(refusal)
    own = await status_reply(ctx, code)
    text = refusal + "\n\n" + own.text
    return Reply(text, card={**own.card, "fallbackText": text} if own.card else None, note=refusal)


def _behind_key(row: Row) -> tuple[int, int, str]:
    return (-row.overdue, row.overall_pct, row.name)


def _line(ctx: Ctx, row: Row) -> str:
    phase = ctx.content.phase(row.phase).name.get(ctx.lang)
    parts = [f"**{row.name}**", ctx.t("portfolio.phase", number=row.phase, phase=phase, pct=row.phase_pct),
             ctx.t("portfolio.overall", pct=row.overall_pct)]
    if row.next_milestone:
        name, day = row.next_milestone
        term = ctx.content.known_term(name).term.get(ctx.lang)
        parts.append(ctx.t("portfolio.next", milestone=term, date=ctx.date(day), left=ctx.until(day)))
    if row.overdue:
        parts.append(ctx.tn("portfolio.overdue", row.overdue))
    return " · ".join(parts)


def deadlines_note(ctx: Ctx) -> str:
    """Which deadlines "forsinket" counts: drafted guideline ones, or the KOMBIT project's own."""
    drafted = any(t.due and (t.details_source is None or t.details_source.kind == "draft") for t in ctx.content.tasks)
    return ctx.t("portfolio.deadlines.draft" if drafted else "portfolio.deadlines.project",
                 project=ctx.content.project.name.get(ctx.lang))


def _listing(ctx: Ctx, rows: list[Row]) -> str:
    """One bullet per municipality, at most LISTED, then how many more."""
    lines = [f"- {_line(ctx, r)}" for r in rows[:LISTED]]
    if len(rows) > LISTED:
        lines.append(ctx.tn("portfolio.more", len(rows) - LISTED))
    return "\n".join(lines)


def _bar(label: str, value: float, maximum: float, caption: str) -> cards.Element:
    """One bar of a horizontal bar chart, drawn with Adaptive Card columns (no image, no chart extension)."""
    share = max(1, round(100 * value / maximum)) if maximum and value else 0
    columns: list[cards.Element] = [{"type": "Column", "width": "120px", "items": [cards.text(label, size="Small")]}]
    if share:
        columns.append({"type": "Column", "width": f"{share}", "style": "accent", "bleed": False,
                        "items": [cards.text(" ", size="Small")]})
    columns.append({"type": "Column", "width": f"{max(1, 100 - share)}",
                    "items": [cards.text(caption, size="Small", isSubtle=True)]})
    return {"type": "ColumnSet", "columns": columns, "spacing": "Small"}


def _chart(ctx: Ctx, rows: list[Row]) -> tuple[list[cards.Element], list[str]]:
    """Municipalities per phase, and % done per wave: as card bars and as text bars."""
    body, text = [cards.text(ctx.t("portfolio.chart.phases"), weight="Bolder")], []
    counts = {p.number: sum(1 for r in rows if r.phase == p.number) for p in ctx.content.phases}
    most = max(counts.values(), default=0)
    for p in ctx.content.phases:
        label = f"{p.number} {p.name.get(ctx.lang)}"
        body.append(_bar(label, counts[p.number], most, str(counts[p.number])))
        text.append(f"`{label:<16}` {'█' * round(20 * counts[p.number] / most) if most else ''} {counts[p.number]}")
    waves = ctx.content.project.waves
    if waves:
        body.append(cards.text(ctx.t("portfolio.chart.waves"), weight="Bolder", spacing="Medium"))
        text.append("")
        for wave in waves:
            members = [r for r in rows if r.wave == wave.id]
            pct = round(sum(r.overall_pct for r in members) / len(members)) if members else 0
            name = wave.name.get(ctx.lang)
            body.append(_bar(name, pct, 100, f"{pct} %"))
            text.append(f"`{name:<16}` {'█' * round(pct / 5)} {pct} %")
    return body, text


@consultants_only
async def overview(ctx: Ctx, u: Understanding) -> Reply:
    rows = await _rows(ctx)
    if not rows:
        return Reply(ctx.t("portfolio.empty"))
    sort = u.slots.get("sort")
    if sort == "behind":
        rows.sort(key=_behind_key)
    elif sort == "golive":  # upcoming go-lives first, soonest first; passed or unknown ones after
        today = ctx.today()
        rows.sort(key=lambda r: (r.golive is None or r.golive < today, r.golive or date.max, r.name))
    else:
        rows.sort(key=lambda r: r.name)
    header = ctx.tn("portfolio.header", len(rows))
    chart_body, chart_text = _chart(ctx, rows)
    listed = [_line(ctx, r) for r in rows[:LISTED]]
    more = [ctx.tn("portfolio.more", len(rows) - LISTED)] if len(rows) > LISTED else []
    note = deadlines_note(ctx)
    text = "\n\n".join([header, "\n".join(chart_text), "\n".join(f"- {line}" for line in listed), *more, f"_{note}_"])
    body = [cards.title(header), *chart_body, *(cards.text(line, spacing="Small") for line in listed),
            *(cards.subtle(m) for m in more), cards.subtle(note)]
    return Reply(text, card=cards.card(body, text, [cards.button(ctx.t("card.export"), "export", "", p=1)]))


@consultants_only
async def lagging(ctx: Ctx, u: Understanding) -> Reply:
    if "wave" in u.unresolved:
        names = [w.name.get(ctx.lang) for w in ctx.content.project.waves]
        return Reply(ctx.t("portfolio.no_wave", text=esc(str(u.slots["wave"])),
                           options=ctx.either(names) if names else "–"))
    rows = await _rows(ctx)
    wave = u.slots.get("wave")
    if wave:
        rows = [r for r in rows if r.wave == wave]
    behind = sorted((r for r in rows if r.overdue), key=_behind_key)
    scope = ctx.content.project.known_wave(wave).name.get(ctx.lang) if wave else ctx.t("portfolio.all")
    note = f"_{deadlines_note(ctx)}_"
    if not behind:
        return Reply(ctx.t("portfolio.none_behind", scope=scope, count=len(rows)) + "\n\n" + note)
    return Reply("\n\n".join([ctx.t("portfolio.behind", scope=scope, count=len(behind)), _listing(ctx, behind), note]))


@consultants_only
async def in_phase(ctx: Ctx, u: Understanding) -> Reply:
    number = u.slots.get("phase")
    if not isinstance(number, int):
        return Reply(ctx.t("phase.which", options=ctx.phase_options()))
    rows = sorted((r for r in await _rows(ctx) if r.phase == number), key=lambda r: r.name)
    name = ctx.content.phase(number).name.get(ctx.lang)
    if not rows:
        return Reply(ctx.t("portfolio.in_phase.none", number=number, phase=name))
    return Reply(ctx.t("portfolio.in_phase", number=number, phase=name, count=len(rows)) + "\n\n" + _listing(ctx, rows))


@consultants_only
async def status_for(ctx: Ctx, u: Understanding) -> Reply:
    code = u.slots.get("municipality")
    if "municipality" in u.unresolved or not code:
        return Reply(ctx.t("portfolio.unknown_municipality", text=esc(str(code or ""))))
    if (await ctx.store.municipality(code)).tenant_id is None:
        return Reply(ctx.t("portfolio.not_registered", name=ctx.municipality_name(code)))
    return await status_reply(ctx, code)


EXPORT_COLUMNS = ("kommunekode", "kommune", "bølge", "kommunens fase", "opgave-id", "opgave", "opgavens fase",
                  "tema", "lokal", "status", "udført af", "udført (UTC)", "ansvarlig", "udfører")


def export_csv(ctx: Ctx, states: list[MunicipalityState]) -> bytes:
    """One row per municipality × task, for Danish Excel: UTF-8 with BOM (æøå), semicolons."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    themes = {t.id: t.name.da for t in ctx.content.themes}
    for state in sorted(states, key=lambda s: s.code):
        municipality = ctx.content.known_municipality(state.code)
        wave = ctx.content.project.wave_of(state.code)
        phase = current_phase(ctx.content, state)
        for task in tasks_of(ctx.content, state):
            done = state.tasks.get(task.id)
            assignment = state.assignments.get(task.id, {})
            people = [(assignment.get(role) or {}).get("name", "") for role in ROLES]
            writer.writerow(map(_cell, [
                state.code, municipality.name, wave.name.da if wave else "", phase, task.id, task.title.da, task.phase,
                themes.get(task.theme, task.theme), "ja" if task.local else "nej",
                "udført" if done and done.done else "åben", done.by.name if done and done.done else "",
                done.at if done and done.done else "", *people]))
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _cell(value: object) -> object:
    """Excel runs a cell that starts with = + - @ as a formula: names from Teams must stay text."""
    return f"'{value}" if isinstance(value, str) and value[:1] in ("=", "+", "-", "@") else value


@consultants_only
async def export(ctx: Ctx, u: Understanding) -> Reply:
    states = await ctx.store.all_municipalities()
    name = f"implementering-{ctx.today().isoformat()}.csv"
    return Reply(ctx.tn("portfolio.export", len(states)), file=(name, export_csv(ctx, states)),
                 file_label=ctx.t("card.download"))
