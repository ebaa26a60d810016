"""A yes/no question about a change, remembered for this thread so that "ja" (or the card's button) makes it."""
from __future__ import annotations

from dialogs import cards
from dialogs.context import Ctx
from dialogs.turn import Reply


async def pending_question(ctx: Ctx, intent: str, slots: dict, question: str) -> Reply:
    """Ask `question`; on "ja" from the same person, `intent` runs with `slots` (plain JSON values)."""
    await ctx.update_thread(pending={"intent": intent, "slots": slots, "user": ctx.turn.user.id,
                                     "at": ctx.turn.now.isoformat()})
    text = question + "\n\n" + ctx.t("confirm.how")
    code = await ctx.municipality_code() or ""
    actions = [cards.button(ctx.t("card.yes"), "confirm", code, ok=True),
               cards.button(ctx.t("card.no"), "confirm", code, ok=False)]
    return Reply(text, card=cards.card([cards.text(question)], text, actions))
