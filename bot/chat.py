"""`python -m bot chat`: the same assistant in a terminal, on the same data dir, without Teams."""
from __future__ import annotations

import asyncio
import sys

from bot.app import build_services, utc_now
from bot.config import Config
from dialogs.assistant import Assistant
from dialogs.store import Actor
from dialogs.turn import Conversation, TurnInput


async def run_chat(config: Config, municipality: str | None, locale: str, lines=None, out=sys.stdout) -> None:
    services = build_services(config)
    assistant = Assistant(services)
    try:
        await _converse(assistant, municipality, locale, lines, out)
    finally:
        await services.store.checkpoint()  # marks made here are in the audit trail; now in the state files too
        await services.store.aclose()
        services.store.close()


async def _converse(assistant: Assistant, municipality: str | None, locale: str, lines, out) -> None:
    # No tenant: only Teams vouches for one, and a terminal must not bind a municipality to a made-up tenant.
    conversation = Conversation(id="terminal", scope="conversation:terminal", kind="personal", tenant_id=None)
    user = Actor(id="terminal-user", name="Terminal")

    async def say(text: str) -> None:
        reply = await assistant.on_message(TurnInput(text, user, conversation, utc_now(), locale))
        print(reply.text + "\n", file=out, flush=True)

    print((await assistant.on_added(TurnInput("", user, conversation, utc_now(), locale))).text + "\n", file=out)
    if municipality:
        await say(f"tilmeld {municipality}")
    interactive = lines is None and sys.stdin.isatty()
    source = lines if lines is not None else sys.stdin
    while True:
        if interactive:
            print("> ", end="", file=out, flush=True)
        line = await asyncio.to_thread(source.readline) if hasattr(source, "readline") else next(source, "")
        if not line:
            return
        if line.strip():
            await say(line.strip())
