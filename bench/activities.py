"""Teams-shaped activities, the same for every variant, and the bot's realistic message mix.

Shaped like tests/harness.py builds them (channelId msteams, channelData.tenant, aadObjectId, locale), but
written out here: bench code must not import tests/. Each load-generator worker owns one "slot": a personal
conversation registered to its own municipality. A worker's requests are sequential, so its mark and undo
alternate strictly and every mark really changes state (no "already done" short-cuts in the measurement).
"""
from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

BOT_ID = "28:bench-bot-app-id"
TENANT = "6f1c2b7e-0000-4000-8000-00000000beef"
MUNICIPALITIES_CSV = Path(__file__).resolve().parents[1] / "content" / "data" / "municipalities.csv"

# The bot's measured mix: next tasks, status, a definition, and a mark/undo pair on a named task. Each
# entry: (text, what a successful reply starts with, or None when any reply will do).
MIX: list[tuple[str, str | None]] = [
    ("hvad skal vi nu?", None),
    ("status", None),
    ("marker Udpeg projektleder som udført", "✅"),
    ("hvad betyder go-live?", None),
    ("fortryd Udpeg projektleder", "↩️"),
]

_ids = itertools.count(1)


def municipality_names(count: int) -> list[str]:
    """Names of the first `count` municipalities, Aarhus first (the README's example)."""
    with MUNICIPALITIES_CSV.open(encoding="utf-8") as fh:
        names = [row["navn"] for row in csv.DictReader(fh)]
    names.remove("Aarhus")
    return ["Aarhus", *names][:count]


@dataclass
class Slot:
    """One worker's conversation and its position in MIX (kept across runs so mark/undo stay paired)."""

    number: int
    municipality: str
    position: int = 0
    conversation_id: str = field(init=False)

    def __post_init__(self):
        self.conversation_id = f"a:bench-personal-{self.number}"

    def next_message(self) -> tuple[str, str | None]:
        text, expect = MIX[self.position % len(MIX)]
        self.position += 1
        return text, expect


def message(text: str, slot: Slot, service_url: str) -> dict:
    """One Teams personal-chat message from one person, with a unique id the reply will point back to."""
    return {
        "type": "message",
        "id": f"bench-{next(_ids)}",
        "timestamp": datetime.now(UTC).isoformat(),
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": {"id": f"29:bench-user-{slot.number}", "name": f"Bench Bruger {slot.number}",
                 "aadObjectId": f"aad-bench-{slot.number}"},
        "recipient": {"id": BOT_ID, "name": "Implementeringsassistent"},
        "conversation": {"id": slot.conversation_id, "conversationType": "personal", "tenantId": TENANT},
        "channelData": {"tenant": {"id": TENANT}},
        "locale": "da-DK",
        "text": text,
    }
