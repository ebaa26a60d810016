""""hvad skal vi nu?" / "what's next in Forberedelse?": open tasks of a phase by theme, numbered for "done 3"."""
from __future__ import annotations

from content import Task
from dialogs import cards, sources
from dialogs.context import Ctx
from dialogs.need import municipality_or_reply
from dialogs.phase_ref import phase_or_reply
from dialogs.progress import current_phase, find_task, is_done, open_tasks_by_theme, phase_progress
from dialogs.store import MunicipalityState
from dialogs.turn import Reply
from dialogs.understanding import Understanding


async def handle(ctx: Ctx, u: Understanding) -> Reply:
    code = await municipality_or_reply(ctx)
    if isinstance(code, Reply):
        return code
    state = await ctx.store.municipality(code)
    number = phase_or_reply(ctx, u, default=current_phase(ctx.content, state))
    if isinstance(number, Reply):
        return number
    return await open_tasks_reply(ctx, code, state, number)


async def open_tasks_reply(ctx: Ctx, code: str, state: MunicipalityState, number: int,
                           keep: tuple[str, ...] = ()) -> Reply:
    """The open tasks of a phase as numbered text and as a card with a "done" button per task.

    `keep`: the numbering of the list on screen (a card redrawn after a press): its tasks keep their numbers,
    the ones done since shown as done, so "udført 4" still means the card's 4."""
    phase = ctx.content.phase(number)
    progress = phase_progress(ctx.content, state)[number - 1]
    name = phase.name.get(ctx.lang)
    kept = [find_task(ctx.content, state, t) for t in keep]
    if keep and all(t is not None and t.phase == number for t in kept):
        return _kept_reply(ctx, code, state, number, [t for t in kept if t is not None])
    groups = open_tasks_by_theme(ctx.content, state, number)
    if not groups:
        text = ctx.tn("next.none", progress.total, number=number, phase=name)
        return Reply(text, card=cards.card([cards.title(text)], text))
    header = ctx.t("next.header", number=number, phase=name, done=progress.done, total=progress.total)
    lines, body = [header], [cards.title(header)]
    listed: list[str] = []
    cited = []
    for theme_id, tasks in groups:
        cited += sources.of_titles(tasks)
        theme = ctx.content.theme(theme_id).name.get(ctx.lang)
        block, rows = [f"**{theme}**"], [cards.text(theme, weight="Bolder", spacing="Medium")]
        for task in tasks:
            listed.append(task.id)
            entry = f"{len(listed)}. {task.title.get(ctx.lang)}"
            block.append(entry)
            rows.append(cards.row(entry, cards.button(ctx.t("card.done"), "done", code, task=task.id, p=number)))
        lines.append("\n".join(block))
        body.append({"type": "Container", "items": rows})
    actors = ctx.t("next.actors", actors=ctx.all_of([a.get(ctx.lang).rstrip(".") for a in phase.actors]))
    lines += [actors, ctx.t("next.hint"), sources.line(ctx, cited)]
    body += [cards.subtle(actors), sources.block(ctx, cited)]
    await ctx.update_thread(task_ids=tuple(listed))
    text = "\n\n".join(lines)
    return Reply(text, card=cards.card(body, text))


def _kept_reply(ctx: Ctx, code: str, state: MunicipalityState, number: int, tasks: list[Task]) -> Reply:
    """The list as it was shown, each task with its number: done ones ticked, open ones with their button."""
    progress = phase_progress(ctx.content, state)[number - 1]
    header = ctx.t("next.header", number=number, phase=ctx.content.phase(number).name.get(ctx.lang),
                   done=progress.done, total=progress.total)
    lines, rows = [header], [cards.title(header)]
    for index, task in enumerate(tasks, start=1):
        title = task.title.get(ctx.lang)
        if is_done(state, task.id):
            entry = f"{index}. ✅ {title}"
            lines.append(entry)
            rows.append(cards.text(entry, isSubtle=True))
        else:
            entry = f"{index}. {title}"
            lines.append(entry)
            rows.append(cards.row(entry, cards.button(ctx.t("card.done"), "done", code, task=task.id, p=number)))
    cited = sources.of_titles(tasks)  # the redrawn list says whose titles they are, as the first did
    text = "\n".join(lines[:1]) + "\n\n" + "\n".join(lines[1:]) + "\n\n" + sources.line(ctx, cited)
    return Reply(text, card=cards.card([*rows, sources.block(ctx, cited)], text))
