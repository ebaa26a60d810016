""""hvad skal vi nu?" / "what's next in Forberedelse?": open tasks of a phase by theme, numbered for "done 3"."""
from __future__ import annotations

from dialogs.context import Ctx
from dialogs.need import municipality_or_reply
from dialogs.phase_ref import phase_or_reply
from dialogs.progress import current_phase, open_tasks_by_theme, phase_progress
from dialogs.turn import Reply
from dialogs.understanding import Understanding


async def handle(ctx: Ctx, u: Understanding) -> Reply:
    code, reply = await municipality_or_reply(ctx)
    if reply:
        return reply
    state = await ctx.store.municipality(code)
    number, reply = phase_or_reply(ctx, u, default=current_phase(ctx.content, state))
    if reply:
        return reply
    phase = ctx.content.phase(number)
    progress = phase_progress(ctx.content, state)[number - 1]
    name = phase.name.get(ctx.lang)
    groups = open_tasks_by_theme(ctx.content, state, number)
    if not groups:
        return Reply(ctx.t("next.none", number=number, phase=name, total=progress.total))
    lines = [ctx.t("next.header", number=number, phase=name, done=progress.done, total=progress.total)]
    listed: list[str] = []
    for theme_id, tasks in groups:
        block = [f"**{ctx.content.theme(theme_id).name.get(ctx.lang)}**"]
        for task in tasks:
            listed.append(task.id)
            block.append(f"{len(listed)}. {task.title.get(ctx.lang)}")
        lines.append("\n".join(block))
    actors = ctx.all_of([a.get(ctx.lang).rstrip(".") for a in phase.actors])  # the model ends some with "."
    lines.append(ctx.t("next.actors", actors=actors))
    lines.append(ctx.t("next.hint"))
    await ctx.store.set_last_list(ctx.turn.conversation.id, listed)
    return Reply("\n\n".join(lines))
