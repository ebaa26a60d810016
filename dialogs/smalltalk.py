""""tak", "god weekend", "hej": a short, friendly answer, and a way on for a greeting. An "ok" (or 👍) right
after the bot asked something answers the question: yes."""
from __future__ import annotations

from dialogs import confirm, help
from dialogs.context import Ctx
from dialogs.turn import Reply
from dialogs.understanding import Understanding

KINDS = ("thanks", "bye", "praise", "ack")  # and "greeting", answered by the greeting


async def handle(ctx: Ctx, u: Understanding) -> Reply:
    kind = u.slots.get("kind")
    if kind == "greeting":
        return await help.greet(ctx)
    if kind == "ack" and await confirm.asked(ctx):
        return await confirm.yes(ctx, Understanding("yes"))
    return Reply(ctx.t(f"smalltalk.{kind if kind in KINDS else 'ack'}"))
