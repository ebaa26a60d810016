"""Teams renders message text as Markdown: user text that is echoed back must not become markup."""
from __future__ import annotations

import re

_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>])")


def esc(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return _SPECIAL.sub(r"\\\1", text.replace("<", "&lt;"))


def bullets(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)

