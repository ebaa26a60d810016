""""hvad er implementeringsmodellen?": what the model is, why KOMBIT uses it, and whom it is written for."""
from __future__ import annotations

from dialogs.context import Ctx
from dialogs.turn import Reply
from dialogs.understanding import Understanding


async def handle(ctx: Ctx, u: Understanding) -> Reply:
    model = ctx.content.model
    lines = [f"**{model.name.get(ctx.lang)}**", model.what.get(ctx.lang), model.why.get(ctx.lang),
             model.audience.get(ctx.lang), ctx.t("model.hint"),
             f"_{ctx.t('word.source')}: {model.source.get(ctx.lang)}_"]
    return Reply("\n\n".join(lines))
