""""marker Udpeg projektleder som udført" / "done 3" / "fortryd 3": record who did what, when, where."""
from __future__ import annotations

from dialogs import gate
from dialogs.context import Ctx
from dialogs.progress import phase_progress
from dialogs.task_ref import municipality_and_task
from dialogs.turn import Reply
from dialogs.understanding import Understanding


async def mark_done(ctx: Ctx, u: Understanding) -> Reply:
    return await _set(ctx, u, done=True)


async def reopen(ctx: Ctx, u: Understanding) -> Reply:
    return await _set(ctx, u, done=False)


async def _set(ctx: Ctx, u: Understanding, done: bool) -> Reply:
    found = await municipality_and_task(ctx, u)
    if isinstance(found, Reply):
        return found
    code, task = found
    turn = ctx.turn
    # A local task may be removed later: its title goes into the audit trail so history can still name it.
    details = {"title": task.title.da} if task.local else None
    change = await ctx.store.set_task(code, task.id, done, turn.user, turn.now.isoformat(), turn.conversation.id,
                                      details)
    title = task.title.get(ctx.lang)
    if not change.changed:
        if done:
            current = change.current
            assert current is not None, "a task already done has a state (TaskChange.current)"
            return Reply(ctx.t("mark.already", task=title, who=ctx.who(current.by), when=ctx.when(current.at)))
        return Reply(ctx.t("reopen.not_done", task=title))
    state = await ctx.store.municipality(code)
    progress = phase_progress(ctx.content, state)[task.phase - 1]
    phase = ctx.content.phase(task.phase).name.get(ctx.lang)
    key = "mark.done" if done else "reopen.done"
    text = ctx.t(key, task=title, who=ctx.who(turn.user))
    text += "\n\n" + ctx.t("mark.progress", number=task.phase, phase=phase, progress=ctx.progress(progress.done, progress.total))
    if done and progress.complete:
        started = await gate.begin_after_last_task(ctx, code)
        if started:
            return gate.checklist_reply(ctx, code, started,
                                        note=text + "\n\n" + ctx.t("mark.phase_complete", number=task.phase, phase=phase))
        if task.phase == len(ctx.content.phases) and state.phase == task.phase:
            text += "\n\n" + ctx.t("mark.all_complete")
    return Reply(text)
