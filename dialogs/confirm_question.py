"""A yes/no question about a change, remembered for this thread so that "ja" (or the card's button) makes it.

Each question has an id, carried by its buttons: the "Ja" under an older question is not a yes to a newer one."""
from __future__ import annotations

import secrets
from typing import Any

from dialogs import cards
from dialogs.context import Ctx
from dialogs.turn import Reply


async def pending_question(ctx: Ctx, intent: str, slots: dict[str, Any], question: str) -> Reply:
    """Ask `question`; on "ja" from the same person, `intent` runs with `slots` (plain JSON values)."""
    asked = secrets.token_hex(4)
    await ctx.update_thread(pending={"id": asked, "intent": intent, "slots": slots, "user": ctx.turn.user.id,
                                     "at": ctx.turn.now.isoformat(), "question": question})
    text = question + "\n\n" + ctx.t("confirm.how")
    code = await ctx.municipality_code() or ""
    actions = [cards.button(ctx.t("card.yes"), "confirm", code, ok=True, q=asked),
               cards.button(ctx.t("card.no"), "confirm", code, ok=False, q=asked)]
    return Reply(text, card=cards.card([cards.text(question)], text, actions))
