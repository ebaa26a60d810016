"""`python -m bot nudges [--at …] [--dry-run]`: one sweep, the same code the server runs on a timer."""
from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.app import NUDGES, make_app, utc_now
from bot.config import Config


def parse_at(text: str | None, timezone: str) -> datetime:
    if not text:
        return utc_now()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--at must be YYYY-MM-DD or YYYY-MM-DDTHH:MM, not {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    if len(text) == 10:  # a bare date: sweep at 09:00 that day, inside the default window
        moment = moment.replace(hour=9)
    return moment


def run_sweep(config: Config, at: str | None, dry_run: bool, out=sys.stdout) -> int:
    app = make_app(config)
    sender = app[NUDGES]
    now = parse_at(at, sender.services.content.project.nudges.window.timezone)

    async def sweep():
        try:
            return await sender.sweep(now, dry_run=dry_run)
        finally:
            await sender.services.store.checkpoint()
            await sender.services.store.aclose()
            sender.services.store.close()
            await sender.adapter.bot_framework_authentication.close()

    report = asyncio.run(sweep())
    if not report.window_open:
        print(f"{now.isoformat()}: outside the nudge window; nothing sent", file=out)
        return 0
    for nudge in report.planned:
        print(f"{'would send' if dry_run else 'due'}: {nudge.key}", file=out)
        if dry_run:
            print("  " + nudge.text.replace("\n", "\n  "), file=out)
    if not dry_run:
        print(f"sent {len(report.sent)}, failed {len(report.failed)}, skipped {len(report.skipped)}, "
              f"conversations gone {len(report.deactivated)}", file=out)
    return 1 if report.failed else 0
