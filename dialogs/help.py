"""Greeting, "hjælp", and the answer to anything not understood: never silence."""
from __future__ import annotations

from rapidfuzz import fuzz, process

from dialogs.context import Ctx
from dialogs.text import fold
from dialogs.turn import Reply
from dialogs.understanding import Understanding

# Each capability with its example sentence key; help lists them, "unknown" suggests the closest.
CAPABILITIES = ("register", "status", "next", "mark", "reopen", "milestone", "gate", "phase", "theme", "define",
                "history", "language")


def _examples(ctx: Ctx) -> list[str]:
    return [ctx.t(f"help.example.{c}") for c in CAPABILITIES]


async def greet(ctx: Ctx) -> Reply:
    code = await ctx.municipality_code()
    key = "greet.registered" if code else "greet.body"
    return Reply(ctx.t(key, name=ctx.municipality_name(code) if code else ""))


async def handle(ctx: Ctx, u: Understanding) -> Reply:
    rows = [f"- {ctx.t(f'help.what.{c}')}: «{ctx.t(f'help.example.{c}')}»" for c in CAPABILITIES]
    return Reply(ctx.t("help.header") + "\n\n" + "\n".join(rows))


async def unknown(ctx: Ctx, u: Understanding) -> Reply:
    if not u.text:
        return Reply(ctx.t("unknown.empty"))
    examples = _examples(ctx)
    ranked = process.extract(fold(u.text), [fold(e) for e in examples], scorer=fuzz.WRatio, limit=3)
    closest = [examples[index] for _, _, index in ranked]
    return Reply(ctx.t("unknown.body", options=ctx.either(closest)))
