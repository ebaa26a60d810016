"""Command line: `python -m bot serve` runs the bot; `python -m bot chat` talks to it in a terminal."""
from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
from pathlib import Path

from aiohttp import web

from bot import logs
from bot.config import Config
from bot.store import StoreError
from content import ContentError

log = logging.getLogger("bot")
SHUTDOWN_GRACE = 8.0  # seconds for in-flight turns at SIGTERM; platforms kill after 10 (App Service) to 30


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="KOMBIT implementation model assistant")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the bot on $PORT (default 3978)")
    chat = sub.add_parser("chat", help="chat with the bot in this terminal")
    chat.add_argument("--municipality", help="register this municipality first, e.g. Aarhus or 751")
    chat.add_argument("--locale", default="da-DK", help="da-DK (default) or en-US")
    admin = sub.add_parser("admin", help="operator commands on the store (BOT_DATABASE_URL, else BOT_DATA_DIR)").add_subparsers(dest="action", required=True)
    rebind = admin.add_parser("rebind", help="bind a municipality to another tenant (audited)")
    rebind.add_argument("code", help="municipality code, e.g. 0751")
    rebind.add_argument("tenant", help="the AAD tenant id (GUID)")
    backup = admin.add_parser("backup", help="a consistent copy as a data dir (from either store), also while "
                                             "the bot runs")
    backup.add_argument("target", type=Path)
    forget = admin.add_parser("forget-user", help="GDPR erasure: pseudonymise a person in the audit trail")
    forget.add_argument("user_id", help="the person's AAD object id")
    migrate = admin.add_parser("migrate", help="copy the data dir (BOT_DATA_DIR) into an empty PostgreSQL "
                                               "database and verify the copy")
    migrate.add_argument("--to", required=True, metavar="postgresql://…", help="the database to fill")
    nudges = sub.add_parser("nudges", help="run one nudge sweep now against the data dir")
    nudges.add_argument("--at", help="the time to sweep for, YYYY-MM-DD[THH:MM] (Europe/Copenhagen); default now")
    nudges.add_argument("--dry-run", action="store_true", help="print what would be sent, send nothing")
    package = sub.add_parser("package", help="build the Teams app package (zip) to upload to Teams")
    package.add_argument("--app-id", required=True, help="the bot registration's Microsoft App ID (GUID)")
    package.add_argument("--out", type=Path, default=Path("build/app.zip"), help="zip to write (default build/app.zip)")
    args = parser.parse_args(argv)
    if args.command == "package":  # needs no environment, data dir or content
        from bot.package import build_package

        try:
            print(build_package(args.app_id, args.out))
        except ValueError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 2
        return 0
    logs.setup("INFO" if args.command == "serve" else "WARNING")
    try:
        config = Config.from_env()
        if args.command == "serve":
            from bot.app import make_app

            app = make_app(config)
            # Content, templates and the SDK are built once and live as long as the process: moving them out
            # of the collector's reach spares every full collection from walking them again.
            gc.collect()
            gc.freeze()
            print(f"Bot listening on http://localhost:{config.port}/api/messages "
                  f"({'authentication on' if config.auth_enabled else 'local mode, no authentication'})", flush=True)
            # SIGTERM (a platform stopping or moving the instance): aiohttp stops accepting, /readyz turns 503, the
            # turns in flight get up to SHUTDOWN_GRACE seconds to finish, then the cleanup checkpoints; exit 0.
            web.run_app(app, host=config.host, port=config.port, print=None, access_log_class=logs.AccessLogger,
                        shutdown_timeout=SHUTDOWN_GRACE)
        elif args.command == "nudges":
            from bot.sweep_command import run_sweep

            return run_sweep(config, args.at, args.dry_run)
        elif args.command == "chat":
            from bot.chat import run_chat

            asyncio.run(run_chat(config, args.municipality, args.locale))
        else:
            from bot import admin as ops

            print(asyncio.run(ops.run(config, args)))
    except (ContentError, StoreError, ValueError) as exc:
        print(f"{'Cannot start' if args.command != 'admin' else 'Error'}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
