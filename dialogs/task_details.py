""""vis Planlæg uddannelse": where the task comes from, its description, prerequisites, result, who typically does
it and its deadline (a date when the milestone is set), each marked as the model's, the project's or a draft;
then ansvarlig/udfører and the task's history."""
from __future__ import annotations

from content import Task
from dialogs import cards, sources
from dialogs.assign import assignment_text
from dialogs.context import Ctx
from dialogs.progress import due_date, is_done
from dialogs.store import MunicipalityState
from dialogs.task_ref import municipality_and_task
from dialogs.turn import Reply
from dialogs.understanding import Understanding

FIELDS = ("description", "prerequisites", "result", "responsible")


def deadline(ctx: Ctx, state: MunicipalityState, task: Task) -> str | None:
    """"Vejledende frist (udkast): 1. feb. 2027 (8 uger før idriftsættelsesdatoen)", or None without a `due`."""
    if task.due is None:
        return None
    milestone = ctx.t(f"milestone.in_text.{task.due.milestone}")
    weeks = task.due.weeks_before
    relative = ctx.tn("details.due.before" if weeks >= 0 else "details.due.after", abs(weeks), milestone=milestone)
    day = due_date(ctx.content, state, task)
    kind = task.details_source.kind if task.details_source else "draft"
    label = ctx.t("details.deadline.draft" if kind == "draft" else "details.deadline")
    return f"**{label}:** " + (f"{ctx.date(day)} ({relative})" if day else relative)


async def handle(ctx: Ctx, u: Understanding) -> Reply:
    found = await municipality_and_task(ctx, u)
    if isinstance(found, Reply):
        return found
    code, task = found
    state = await ctx.store.municipality(code)
    phase = ctx.content.phase(task.phase).name.get(ctx.lang)
    theme = ctx.content.theme(task.theme).name.get(ctx.lang)
    title_kind = task.source.kind if task.source else "draft"
    where = ctx.t(f"details.kind.{title_kind}", number=task.phase, phase=phase, theme=theme)
    if title_kind == "model" and (task.details_source is None or task.details_source.kind == "draft"):
        where += " " + ctx.t("details.placement.draft")
    lines = [f"**{task.title.get(ctx.lang)}**", where]
    for name in FIELDS:
        value = getattr(task, name)
        if value:
            lines.append(f"**{ctx.t(f'details.{name}')}:** {value.get(ctx.lang)}")
    due = deadline(ctx, state, task)
    if due:
        lines.append(due)
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
    lines.append(_sources(ctx, task))
    return Reply("\n\n".join(lines))


def _sources(ctx: Ctx, task: Task) -> str:
    """Whose words the title is, and whose the rest: "Titel og tema: Implementeringsmodellen 2.0 – … · Beskrivelse,
    …: Udkast – ikke KOMBITs tekst"."""
    title, rest = task.source, task.details_source
    if title is None or rest is None or title == rest or task.local:
        return sources.line(ctx, [s for s in (title, rest) if s])
    drafted = [name for name in FIELDS if getattr(task, name)] + (["due"] if task.due else [])
    if not drafted:
        return sources.line(ctx, [title])
    return "_" + ctx.t("details.sources", title=sources.where(ctx, title), details=sources.where(ctx, rest)) + "_"


async def status(ctx: Ctx, u: Understanding) -> Reply:
    """"er Udpeg projektleder udført?": yes (who, when) or not yet, with a button to mark it."""
    found = await municipality_and_task(ctx, u)
    if isinstance(found, Reply):
        return found
    code, task = found
    state = await ctx.store.municipality(code)
    title = task.title.get(ctx.lang)
    done = state.tasks.get(task.id)
    if done and done.done:
        text = ctx.t("task_status.done", task=title, who=ctx.who(done.by), when=ctx.when(done.at))
        return Reply(text)
    text = ctx.t("task_status.open", task=title)
    button = cards.button(ctx.t("card.done"), "done", code, task=task.id, p=task.phase)
    return Reply(text, card=cards.card([cards.text(text)], text, [button]))
