"""Scores understanding on a labelled set (tests/data/heldout/*.yaml): per kind, per intent, and unsafe readings.

`python -m tests.understanding_eval [dev|test] [--misses]` prints the figures; `--misses` lists what went
wrong, and refuses to do so for the frozen test part (reading its misses would be tuning on it).
"""
from __future__ import annotations

import re
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

HELDOUT = Path(__file__).parent / "data" / "heldout"
TODAY = date(2026, 12, 2)  # the day the set was written: dates without a year are read from it


def load(part: str) -> list[dict]:
    return yaml.safe_load((HELDOUT / f"{part}.yaml").read_text(encoding="utf-8"))


def _fold(text: str) -> str:
    return re.sub(r"[^0-9a-zæøå]+", " ", str(text).lower()).strip()


def _numbers(value: Any) -> list[int]:
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    return [int(n) for n in re.findall(r"\d+", str(value))]


def _date(value: Any) -> str | None:
    if isinstance(value, date):
        return value.isoformat()
    from dialogs.dates import DateError, parse_date
    try:
        parsed = parse_date(str(value), TODAY)
    except DateError:
        return None
    return parsed.isoformat() if parsed else None


def slot_matches(name: str, wanted: Any, got: Any, unresolved: set[str], known_terms: set[str]) -> bool:
    if name in ("term", "term2") and wanted == "?":
        return got is not None and (name in unresolved or got not in known_terms)
    if got is None:
        return False
    if name == "person":
        return wanted == got if str(wanted).startswith("@") else _fold(wanted) == _fold(str(got).lstrip("@"))
    if name == "date":
        return str(wanted) == _date(got)
    if name == "numbers":
        return _numbers(wanted) == _numbers(got)
    if name == "title":
        a, b = _fold(wanted), _fold(got)
        return bool(a) and (a in b or b in a)
    if name in unresolved:  # a name the bot does not know (a local task) is given back as typed
        return _fold(wanted) == _fold(got)
    return str(wanted) == str(got)


@dataclass
class Reading:
    """What an understander made of a message, in the set's terms."""

    intent: str
    slots: dict = field(default_factory=dict)
    unresolved: set[str] = field(default_factory=set)
    acts: bool = False  # would change data without asking first


@dataclass
class Score:
    total: int = 0
    right: int = 0
    unsafe: list[str] = field(default_factory=list)
    by_kind: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    by_intent: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    misses: list[str] = field(default_factory=list)
    changes_meant: int = 0  # messages that mean a change, read right
    changes_made: int = 0  # of those, made without a question first (the rest are asked about: one more turn)

    @property
    def accuracy(self) -> float:
        return self.right / self.total if self.total else 0.0


def score(items: list[dict], read: Callable[[dict], Reading], known_terms: set[str],
          state_changing: set[str]) -> Score:
    result = Score()
    for item in items:
        reading = read(item)
        intents = {item["intent"], *(item.get("also") or [])}
        ok = reading.intent in intents and (reading.intent != item["intent"] or all(
            slot_matches(name, wanted, reading.slots.get(name), reading.unresolved, known_terms)
            for name, wanted in (item.get("slots") or {}).items()))
        result.total += 1
        result.right += ok
        if ok and item["intent"] in state_changing:
            result.changes_meant += 1
            result.changes_made += reading.acts
        for table, key in ((result.by_kind, item["kind"]), (result.by_intent, item["intent"])):
            table[key][0] += ok
            table[key][1] += 1
        if reading.acts and reading.intent in state_changing and reading.intent not in intents:
            result.unsafe.append(f"{item['id']}: {item['text']!r} -> {reading.intent} {reading.slots}")
        if not ok:
            result.misses.append(f"{item['id']} [{item['kind']}] {item['text']!r}\n"
                                 f"    want {item['intent']} {item.get('slots') or {}}"
                                 f"{' also ' + str(item['also']) if item.get('also') else ''}\n"
                                 f"    got  {reading.intent} {reading.slots}"
                                 f"{' unresolved ' + str(sorted(reading.unresolved)) if reading.unresolved else ''}"
                                 f"{' (acts)' if reading.acts else ''}")
    return result


def report(name: str, result: Score) -> str:
    lines = [f"{name}: {result.right}/{result.total} = {result.accuracy:.1%} understood; "
             f"{len(result.unsafe)} would change data they should not; "
             f"{result.changes_made}/{result.changes_meant} changes read right are made without asking first"]
    lines.append("  per kind: " + ", ".join(f"{k} {r}/{n}" for k, (r, n) in sorted(result.by_kind.items())))
    return "\n".join(lines)


def project_content():
    """The content as a KOMBIT project has it configured: the set's consultant messages name three waves."""
    from content import load_content
    from content.schema import Text, Wave
    content = load_content()
    waves = [Wave(id=f"boelge-{n}", name=Text(da=f"Bølge {n}", en=f"Wave {n}")) for n in (1, 2, 3)]
    content.project = content.project.model_copy(update={"waves": waves})
    return content


def current_reader() -> tuple[Callable[[dict], Reading], set[str], set[str]]:
    """The product's understanding, read in the set's terms. A consultant's messages are read as a
    consultant's (the bot knows who its consultants are), everybody else's as a project team member's."""
    from dialogs.understanding import Understander
    content = project_content()
    understander = Understander(content)
    changing = {i.name for i in content.intents.values() if i.changes}

    def read(item: dict) -> Reading:
        u = understander.understand(item["text"], consultant=item["kind"] == "consultant")
        # It acts when it would change data without asking: a change, not asked about, with its slots.
        spec = content.intents.get(u.intent)
        acts = u.intent in changing and not u.confirm and all(u.slots.get(s) for s in spec.required)
        return Reading(u.intent, dict(u.slots), set(u.unresolved), acts=acts)
    # The set's "?" means "not one of the terms in ids.md", the model's defined terms the writers saw; the words
    # the model only uses (model_words.yaml, added later) are not among them, so reading one there is right.
    return read, {t.id for t in content.terms if t.definition is not None}, changing


def main(argv: list[str]) -> int:
    part = argv[0] if argv and not argv[0].startswith("-") else "dev"
    read, terms, changing = current_reader()
    result = score(load(part), read, terms, changing)
    print(report(part, result))
    for line in result.unsafe:
        print("  UNSAFE", line if part != "test" else line.split(":")[0])
    if "--misses" in argv:
        if part == "test":
            print("the frozen test part's misses are not shown: reading them would be tuning on it")
            return 2
        print("\n".join(result.misses))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
