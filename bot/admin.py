"""`python -m bot admin …`: operator commands on the data dir. Safe while the server runs (same file lock)."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

from bot.app import utc_now
from bot.store import TinyStore
from content import load_content
from dialogs.context import FORGOTTEN_PREFIX
from dialogs.store import Actor

OPERATOR = Actor(id="operator", name="KOMBIT operatør")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class AdminError(ValueError):
    """Bad arguments: the message says what to fix (printed by the CLI, exit 2)."""


async def rebind(data_dir: Path, code: str, tenant: str) -> str:
    code = code.zfill(4) if code.isdigit() else code
    if load_content().municipality(code) is None:
        raise AdminError(f"no municipality has code {code!r}")
    if not _GUID.match(tenant):
        raise AdminError(f"{tenant!r} is not a tenant id (a GUID)")
    previous = await TinyStore(data_dir).rebind(code, tenant.lower(), OPERATOR, utc_now().isoformat())
    return f"municipality {code}: tenant {previous or '(none)'} -> {tenant.lower()}"


async def backup(data_dir: Path, target: Path) -> str:
    copied = await TinyStore(data_dir).backup(target)
    return "copied " + ", ".join(str(p) for p in copied) if copied else "nothing to copy yet"


async def forget_user(data_dir: Path, user_id: str) -> str:
    if not user_id.strip():
        raise AdminError("give the person's AAD object id")
    # A stable pseudonym: the same person erased twice stays one pseudonym; the id cannot be read back.
    pseudonym = Actor(id=FORGOTTEN_PREFIX + hashlib.sha256(user_id.encode()).hexdigest()[:16], name="")
    count = await TinyStore(data_dir).forget_user(user_id, pseudonym, OPERATOR, utc_now().isoformat())
    return f"pseudonymised {count} audit events as {pseudonym.id}; preferences removed"
