"""`python -m bot admin …`: operator commands on the store the environment names (BOT_DATABASE_URL, else the
data dir). Safe while the server runs: the data dir's file lock, or the database's transactions."""
from __future__ import annotations

import argparse
import hashlib
import re
from pathlib import Path

from bot.app import utc_now
from bot.config import Config
from bot.store import TinyStore
from content import load_content
from dialogs.context import FORGOTTEN_PREFIX
from dialogs.store import Actor

OPERATOR = Actor(id="operator", name="KOMBIT operatør")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class AdminError(ValueError):
    """Bad arguments: the message says what to fix (printed by the CLI, exit 2)."""


async def rebind(store, code: str, tenant: str) -> str:
    code = code.zfill(4) if code.isdigit() else code
    if load_content().municipality(code) is None:
        raise AdminError(f"no municipality has code {code!r}")
    if not _GUID.match(tenant):
        raise AdminError(f"{tenant!r} is not a tenant id (a GUID)")
    previous = await store.rebind(code, tenant.lower(), OPERATOR, utc_now().isoformat())
    return f"municipality {code}: tenant {previous or '(none)'} -> {tenant.lower()}"


async def backup(store, target: Path) -> str:
    """A consistent copy as a data dir, from either store: `serve` can run on it, `admin migrate` loads it."""
    copied = await store.backup(target)
    return "copied " + ", ".join(str(p) for p in copied) if copied else "nothing to copy yet"


async def forget_user(store, user_id: str) -> str:
    if not user_id.strip():
        raise AdminError("give the person's AAD object id")
    # A stable pseudonym: the same person erased twice stays one pseudonym; the id cannot be read back.
    pseudonym = Actor(id=FORGOTTEN_PREFIX + hashlib.sha256(user_id.encode()).hexdigest()[:16], name="")
    count = await store.forget_user(user_id, pseudonym, OPERATOR, utc_now().isoformat())
    return f"pseudonymised {count} audit events as {pseudonym.id}; preferences removed"


async def migrate(config: Config, url: str) -> str:
    from bot.migrate import to_postgresql
    from bot.pg_store import PgStore

    if not url.startswith(("postgresql://", "postgres://")):
        raise AdminError(f"--to must be a postgresql:// URL, not {url!r}")
    source, target = TinyStore(config.data_dir), PgStore(url)
    try:
        return await to_postgresql(source, target)
    finally:
        await target.aclose()
        source.close()


async def run(config: Config, args: argparse.Namespace) -> str:
    """One admin command on the configured store, closed afterwards."""
    if args.action == "migrate":
        return await migrate(config, args.to)
    store = config.open_store()
    try:
        if args.action == "rebind":
            return await rebind(store, args.code, args.tenant)
        if args.action == "backup":
            return await backup(store, args.target)
        return await forget_user(store, args.user_id)
    finally:
        await store.aclose()
        store.close()
