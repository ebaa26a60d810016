""""status" / "hvor er vi?": phase, counts per phase and overall, milestones."""
from __future__ import annotations

from dialogs.context import Ctx
from dialogs.need import municipality_or_reply
from dialogs.progress import current_phase, phase_progress
from dialogs.turn import Reply
from dialogs.understanding import Understanding

MILESTONES = ("idriftsaettelsesdato", "go-live")


async def handle(ctx: Ctx, u: Understanding) -> Reply:
    code, reply = await municipality_or_reply(ctx)
    if reply:
        return reply
    state = await ctx.store.municipality(code)
    current = current_phase(ctx.content, state)
    progress = phase_progress(ctx.content, state)
    phase = ctx.content.phase(current)
    lines = [ctx.t("status.header", name=ctx.municipality_name(code), number=current, phase=phase.name.get(ctx.lang))]
    rows = []
    for p in progress:
        name = ctx.content.phase(p.number).name.get(ctx.lang)
        key = "status.row.current" if p.number == current else "status.row"
        rows.append(ctx.t(key, number=p.number, phase=name, done=p.done, total=p.total))
    lines.append("\n".join(f"- {r}" for r in rows))
    lines.append(ctx.t("status.total", done=sum(p.done for p in progress), total=sum(p.total for p in progress)))
    for milestone in MILESTONES:
        if milestone in state.milestones:
            term = ctx.content.term(milestone).term.get(ctx.lang)
            lines.append(ctx.t("status.milestone", name=term, date=ctx.date(state.milestones[milestone])))
    lines.append(ctx.t("status.hint"))
    return Reply("\n\n".join(lines))
