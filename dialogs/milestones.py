""""go-live er 1. marts 2027" / "sæt idriftsættelsesdato til 15-02-2027": the municipality's own dates."""
from __future__ import annotations

from dialogs.context import Ctx
from dialogs.dates import DateError, parse_date
from dialogs.markdown import esc
from dialogs.need import municipality_or_reply
from dialogs.progress import milestones_of
from dialogs.store import AuditEvent, MunicipalityState
from dialogs.turn import Reply
from dialogs.understanding import Understanding


async def handle(ctx: Ctx, u: Understanding) -> Reply:
    code = await municipality_or_reply(ctx)
    if isinstance(code, Reply):
        return code
    name = u.slots.get("milestone")
    if name not in ("idriftsaettelsesdato", "go-live"):
        return Reply(ctx.t("milestone.which"))
    raw = str(u.slots.get("date", ""))
    label = ctx.content.known_term(name).term.get(ctx.lang)
    today = ctx.today()
    try:
        when = parse_date(raw, today)
    except DateError:
        return Reply(ctx.t("milestone.invalid", text=esc(raw)))
    if when is None:
        return Reply(ctx.t("milestone.unreadable", text=esc(raw), milestone=label))
    if when < today:
        return Reply(ctx.t("milestone.past", milestone=label, date=ctx.date(when)))
    turn = ctx.turn

    def decide(state: MunicipalityState) -> tuple[list[AuditEvent], Reply | None]:
        current = {k: m.date for k, m in milestones_of(ctx.content, state).items()}
        current[name] = when
        first, second = current.get("idriftsaettelsesdato"), current.get("go-live")
        if first and second and second < first:  # checked against the dates as they are inside the change
            return [], Reply(ctx.t("milestone.order", golive=ctx.date(second), commissioning=ctx.date(first)))
        return [AuditEvent(code, "milestone", None, turn.user, turn.now.isoformat(), turn.conversation.id,
                           details={"name": name, "date": when.isoformat()})], None

    refused = await ctx.store.change(code, decide)
    if refused:
        return refused
    return Reply(ctx.t("milestone.set", milestone=label, name=ctx.municipality_name(code), date=ctx.date(when),
                       left=ctx.until(when)))


async def show(ctx: Ctx, u: Understanding) -> Reply:
    """"hvornår er go-live?" / "hvilke datoer har vi sat?": the dates, own or the wave's, and how far off."""
    code = await municipality_or_reply(ctx)
    if isinstance(code, Reply):
        return code
    dates = milestones_of(ctx.content, await ctx.store.municipality(code))
    wanted = u.slots.get("milestone")
    names = [wanted] if wanted in ("idriftsaettelsesdato", "go-live") else ["idriftsaettelsesdato", "go-live"]
    lines = []
    for name in names:
        label = ctx.content.known_term(name).term.get(ctx.lang)
        milestone = dates.get(name)
        if milestone is None:
            lines.append(ctx.t("milestone.not_set", milestone=label))
            continue
        wave = ctx.content.project.wave(milestone.wave) if milestone.wave else None
        key = "milestone.is.wave" if wave else "milestone.is"
        lines.append(ctx.t(key, milestone=label, date=ctx.date(milestone.date), left=ctx.until(milestone.date),
                           wave=wave.name.get(ctx.lang) if wave else ""))
    if any(name not in dates for name in names):
        lines.append(ctx.t("milestone.how"))
    return Reply("\n\n".join(lines))
