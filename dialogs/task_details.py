""""vis Planlæg uddannelse": beskrivelse, forudsætninger, resultat, ansvar, tidsfrist (as a date when the
municipality has a go-live), ansvarlig/udfører and the task's history."""
from __future__ import annotations

from datetime import timedelta

from dialogs import cards
from dialogs.assign import assignment_text
from dialogs.context import Ctx
from dialogs.progress import is_done, milestones_of
from dialogs.task_ref import municipality_and_task
from dialogs.turn import Reply
from dialogs.understanding import Understanding

FIELDS = ("description", "prerequisites", "result", "responsible")


async def handle(ctx: Ctx, u: Understanding) -> Reply:
    code, task, reply = await municipality_and_task(ctx, u)
    if reply:
        return reply
    state = await ctx.store.municipality(code)
    phase = ctx.content.phase(task.phase).name.get(ctx.lang)
    theme = ctx.content.theme(task.theme).name.get(ctx.lang)
    kind = ctx.t("details.local") if task.local else ctx.t("details.klik")
    lines = [f"**{task.title.get(ctx.lang)}**", ctx.t("details.where", kind=kind, number=task.phase, phase=phase,
                                                      theme=theme)]
    for name in FIELDS:
        value = getattr(task, name)
        if value:
            lines.append(f"**{ctx.t(f'details.{name}')}:** {value.get(ctx.lang)}")
    if task.deadline_weeks_before_go_live is not None:
        golive = milestones_of(ctx.content, state).get("go-live")
        weeks = task.deadline_weeks_before_go_live
        relative = ctx.t("details.weeks_before" if weeks >= 0 else "details.weeks_after", weeks=abs(weeks))
        if golive:
            due = golive.date - timedelta(weeks=weeks)
            lines.append(f"**{ctx.t('details.deadline')}:** {ctx.date(due)} ({relative})")
        else:
            lines.append(f"**{ctx.t('details.deadline')}:** {relative}")
    assigned = assignment_text(ctx, state.assignments.get(task.id))
    if assigned:
        lines.append(assigned)
    done = state.tasks.get(task.id)
    if done and done.done:
        lines.append(ctx.t("details.done", who=ctx.who(done.by), when=ctx.when(done.at)))
    elif not is_done(state, task.id):
        lines.append(ctx.t("details.open"))
    if await ctx.store.audit(code, task.id, limit=1):
        lines.append(ctx.t("details.history", task=task.title.get(ctx.lang)))
    return Reply("\n\n".join(lines))


async def status(ctx: Ctx, u: Understanding) -> Reply:
    """"er Udpeg projektleder udført?": yes (who, when) or not yet, with a button to mark it."""
    code, task, reply = await municipality_and_task(ctx, u)
    if reply:
        return reply
    state = await ctx.store.municipality(code)
    title = task.title.get(ctx.lang)
    done = state.tasks.get(task.id)
    if done and done.done:
        text = ctx.t("task_status.done", task=title, who=ctx.who(done.by), when=ctx.when(done.at))
        return Reply(text)
    text = ctx.t("task_status.open", task=title)
    button = cards.button(ctx.t("card.done"), "done", code, task=task.id, p=task.phase)
    return Reply(text, card=cards.card([cards.text(text)], text, [button]))
