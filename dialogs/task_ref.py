"""Which task a message means: a number from this conversation's last list, or a name. Never a guess."""
from __future__ import annotations

from content import Task
from dialogs.context import Ctx
from dialogs.markdown import esc
from dialogs.turn import Reply
from dialogs.understanding import Understanding


async def task_or_reply(ctx: Ctx, u: Understanding) -> tuple[Task | None, Reply | None]:
    value = u.slots.get("task")
    if isinstance(value, int):
        listed = await ctx.store.last_list(ctx.turn.conversation.id)
        if not listed:
            return None, Reply(ctx.t("task.no_list", number=value))
        if not 1 <= value <= len(listed) or ctx.content.task(listed[value - 1]) is None:
            return None, Reply(ctx.t("task.out_of_range", number=value, last=len(listed)))
        return ctx.content.task(listed[value - 1]), None
    lookup = u.unresolved.get("task")
    if lookup is None and value:
        return ctx.content.task(value), None
    raw = esc(str(value or ""))
    candidates = [ctx.content.task(c) for c in (lookup.candidates if lookup else ())]
    if lookup and lookup.ambiguous:
        # Number the candidates and remember them, so "done 2" picks one of exactly these.
        await ctx.store.set_last_list(ctx.turn.conversation.id, [t.id for t in candidates])
        listing = "\n".join(f"{i}. {t.title.get(ctx.lang)}" for i, t in enumerate(candidates, start=1))
        return None, Reply(ctx.t("task.ambiguous", text=raw) + "\n\n" + listing + "\n\n" + ctx.t("task.ambiguous.hint"))
    if candidates:
        return None, Reply(ctx.t("task.unknown.suggest", text=raw, options=ctx.either([t.title.get(ctx.lang) for t in candidates])))
    return None, Reply(ctx.t("task.unknown", text=raw))
