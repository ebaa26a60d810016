""""svar på engelsk" / "answer in Danish": remembered per user."""
from __future__ import annotations

from dialogs.context import Ctx
from dialogs.turn import Reply
from dialogs.understanding import Understanding


async def handle(ctx: Ctx, u: Understanding) -> Reply:
    language = u.slots.get("language")
    if language not in ("da", "en"):
        return Reply(ctx.t("language.unknown"))
    await ctx.store.set_language(ctx.turn.user.id, language)
    ctx.lang = language
    return Reply(ctx.t("language.done"))
