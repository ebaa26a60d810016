"""Which task a message means: a number from this conversation's last list, or a name. Never a guess.

Names are looked up among the project's tasks (indexed once at start-up) and, when that finds nothing,
among the municipality's own local tasks."""
from __future__ import annotations

from content import Task
from dialogs.context import Ctx
from dialogs.markdown import esc
from dialogs.need import municipality_or_reply
from dialogs.progress import find_task, local_task
from dialogs.store import MunicipalityState
from dialogs.turn import Reply
from dialogs.understanding import Understanding
from dialogs.understanding.names import NameIndex


async def _state(ctx: Ctx) -> MunicipalityState | None:
    code = await ctx.municipality_code()
    return await ctx.store.municipality(code) if code else None


async def task_or_reply(ctx: Ctx, u: Understanding) -> Task | Reply:
    """The task, remembered as the one a later "den"/"that" refers to; or the reply that asks which."""
    task = await _task_or_reply(ctx, u)
    if isinstance(task, Task):
        await ctx.remember_task(task.id)
    return task


async def _task_or_reply(ctx: Ctx, u: Understanding) -> Task | Reply:
    value = u.slots.get("task")
    if value is None or value == "":
        return Reply(ctx.t("ask.task"))
    state = await _state(ctx)
    lookup_task = (lambda task_id: find_task(ctx.content, state, task_id)) if state else ctx.content.task
    if isinstance(value, int):
        listed = (await ctx.thread()).task_ids
        if not listed:
            return Reply(ctx.t("task.no_list", number=value))
        if not 1 <= value <= len(listed):
            return Reply(ctx.t("task.out_of_range", number=value, last=len(listed)))
        shown = lookup_task(listed[value - 1])
        if shown is None:  # a local task removed since the list was shown
            return Reply(ctx.t("task.gone", number=value))
        return shown
    lookup = u.unresolved.get("task")
    if lookup is None and value and (found := lookup_task(value)) is not None:
        return found  # else: an id this municipality does not have (a local task removed): asked below
    if state and state.local_tasks and value:
        local = NameIndex({t["id"]: [t["title"]] for t in state.local_tasks}).lookup(str(value))
        if local.id:
            return local_task(next(t for t in state.local_tasks if t["id"] == local.id))
    raw = esc(str(value or ""))
    candidates = [t for t in (lookup_task(c) for c in (lookup.candidates if lookup else ())) if t]
    if lookup and lookup.ambiguous:
        # Number the candidates and remember them, so "done 2" picks one of exactly these.
        await ctx.update_thread(task_ids=tuple(t.id for t in candidates))
        listing = "\n".join(f"{i}. {t.title.get(ctx.lang)}" for i, t in enumerate(candidates, start=1))
        return Reply(ctx.t("task.ambiguous", text=raw) + "\n\n" + listing + "\n\n" + ctx.t("task.ambiguous.hint"))
    if candidates:
        return Reply(ctx.t("task.unknown.suggest", text=raw, options=ctx.either([t.title.get(ctx.lang) for t in candidates])))
    return Reply(ctx.t("task.unknown", text=raw))


async def municipality_and_task(ctx: Ctx, u: Understanding) -> tuple[str, Task] | Reply:
    """For the actions on one task of the conversation's municipality: both, or the reply that explains why not."""
    code = await municipality_or_reply(ctx)
    if isinstance(code, Reply):
        return code
    task = await task_or_reply(ctx, u)
    if isinstance(task, Reply):
        return task
    return code, task
