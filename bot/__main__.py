"""Command line: `python -m bot serve` runs the bot; `python -m bot chat` talks to it in a terminal."""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from aiohttp import web

from bot import logs
from bot.config import Config
from bot.store import StoreError
from content import ContentError

log = logging.getLogger("bot")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="KOMBIT implementation model assistant")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the bot on $PORT (default 3978)")
    chat = sub.add_parser("chat", help="chat with the bot in this terminal")
    chat.add_argument("--municipality", help="register this municipality first, e.g. Aarhus or 751")
    chat.add_argument("--locale", default="da-DK", help="da-DK (default) or en-US")
    args = parser.parse_args(argv)
    logs.setup("WARNING" if args.command == "chat" else "INFO")
    try:
        config = Config.from_env()
        if args.command == "serve":
            from bot.app import make_app

            app = make_app(config)
            print(f"Bot listening on http://localhost:{config.port}/api/messages "
                  f"({'authentication on' if config.auth_enabled else 'local mode, no authentication'})", flush=True)
            web.run_app(app, host=config.host, port=config.port, print=None)
        else:
            from bot.chat import run_chat

            asyncio.run(run_chat(config, args.municipality, args.locale))
    except (ContentError, StoreError, ValueError) as exc:
        print(f"Cannot start: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
