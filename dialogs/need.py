"""Guards shared by the dialogs that only make sense for a registered municipality."""
from __future__ import annotations

from dialogs.context import Ctx
from dialogs.turn import Reply


async def municipality_or_reply(ctx: Ctx) -> str | Reply:
    """The conversation's municipality code, or the reply that says why there is none."""
    code = await ctx.municipality_code()
    if ctx.refused_code:
        return Reply(ctx.t("tenant.refused", name=ctx.municipality_name(ctx.refused_code)))
    if code is None:
        return Reply(ctx.t("register.needed"))
    return code
