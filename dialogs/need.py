"""Guards shared by the dialogs that only make sense for a registered municipality."""
from __future__ import annotations

from dialogs.context import Ctx
from dialogs.turn import Reply


async def municipality_or_reply(ctx: Ctx) -> tuple[str | None, Reply | None]:
    code = await ctx.municipality_code()
    if code is None:
        return None, Reply(ctx.t("register.needed"))
    return code, None
