""""tak", "god weekend", "hej": a short, friendly answer, and a way on for a greeting. An "ok" (or 👍) right
after the bot asked something answers the question: yes; "aha" or "ok?" does not."""
from __future__ import annotations

import re

from dialogs import confirm, help
from dialogs.context import Ctx
from dialogs.text import words
from dialogs.turn import Reply
from dialogs.understanding import Understanding

KINDS = ("thanks", "bye", "praise", "ack")
_SKIN_TONES = re.compile("[\U0001F3FB-\U0001F3FF\uFE0F]")  # and "greeting", answered by the greeting


async def handle(ctx: Ctx, u: Understanding) -> Reply:
    kind = u.slots.get("kind")
    if kind == "greeting":
        return await help.greet(ctx)
    confirming, said = ctx.services.understander.words.confirming, words(u.text)
    # 👍🏻 is 👍: skin tones and the emoji presentation mark do not change what it says
    confirms = confirming.whole(said) if said else \
        _SKIN_TONES.sub("", u.text).strip() in {_SKIN_TONES.sub("", s) for s in confirming.symbols}
    if kind == "ack" and confirms and "?" not in ctx.turn.text and await confirm.asked(ctx):
        return await confirm.yes(ctx, Understanding("yes"))
    return Reply(ctx.t(f"smalltalk.{kind if kind in KINDS else 'ack'}"))
