"""An intent's slots from what a message names (entities.py), and from what a template read as a name.

The order of trust for a task: named outright; pointed at by its words; a list number; "den"/"that"; a
template's name that looks like one (a local task's title); the tasks its words point at equally (to ask).
"""
from __future__ import annotations

import functools
import re
from typing import Any

from content.schema import IntentSpec
from dialogs.text import as_typed, words
from dialogs.understanding.entities import Found, Tagged, TaskGuess
from dialogs.understanding.lexicon import Lexicon
from dialogs.understanding.names import Lookup
from dialogs.understanding.reading import LOOKUP_SLOTS, TemplateParse
from dialogs.understanding.template_reader import TemplateReader, as_typed_reading
from dialogs.understanding.utterance import Utterance, prepare
from dialogs.understanding.words import Words

_QUOTED = re.compile(r"[\"'«»“”‘’](.+?)[\"'«»“”‘’]")
_SPECIFIC = 10  # letters of its own a template needs before a name inside it counts as meant as a name


class SlotFiller:
    def __init__(self, intents: dict[str, IntentSpec], words_: Words, lexicon: Lexicon, templates: TemplateReader):
        self._intents = intents
        self._words = words_
        self._lexicon = lexicon
        self._templates = templates
        self._titles = functools.lru_cache(maxsize=256)(self._title)

    # -- what the message names -------------------------------------------------------------------------------
    def evidence(self, slot: str, tagged: Tagged, raw_text: str, intent: str = "") -> Any:
        """What the message names for a slot, or None."""
        if slot == "task":
            # A task named outright, by its words or by number; else a quoted name (a local task's title), or
            # any title where the intent takes free text ("slet opgaven om vikarer").
            free = intent in self._intents and slot in self._intents[intent].free_text
            return self._task(tagged) or self.title(raw_text, quoted_only=not free)
        if slot == "phase":
            return self._phase(tagged, intent)
        if slot == "term2":
            terms = list(dict.fromkeys(f.value for f in tagged.all("term")))
            return terms[1] if len(terms) > 1 else None
        if slot == "person":
            return tagged.first("person") or tagged.first("me")
        if slot == "numbers":
            return tagged.first("number")
        if slot == "title":
            return self.title(raw_text)
        return tagged.first(slot)

    @staticmethod
    def _task(tagged: Tagged) -> Any:
        guess = tagged.task_guess
        named = tagged.first("task")
        if named:
            return guess if guess and guess.beats(named.value) else named
        if guess and guess.id:
            return guess
        return tagged.first("number") or tagged.first("task_ref") or (guess if guess and guess.candidates else None)

    @staticmethod
    def _phase(tagged: Tagged, intent: str) -> Any:
        """The phase named. For a move: the one after "til"/"to", else "back"/"on" from where the municipality is,
        else the last named ("opstarten er overstået, vi skal videre" moves on, not to Opstart)."""
        phases = [f for f in tagged.found if f.kind in ("phase", "phase_ref")]
        if intent != "move_phase":
            return phases[0] if phases else None
        directions = tagged.all("direction")
        for to in (d for d in directions if d.value == "to"):
            after = [f for f in phases if f.start >= to.end]
            if after:
                return after[0]
        refs = [f for f in phases if f.kind == "phase_ref"]
        if refs:
            return refs[0]
        for value, reference in (("back", "previous"), ("on", "next")):
            if any(d.value == value for d in directions):
                return Found("phase_ref", reference, 0, 0)
        return phases[-1] if phases else None

    def title(self, raw_text: str, quoted_only: bool = False) -> str | None:
        """A local task's title: quoted, after a colon, or after "om"/"called"."""
        return self._titles(raw_text or "", quoted_only)

    def _title(self, raw_text: str, quoted_only: bool) -> str | None:
        quoted = _QUOTED.search(raw_text)
        if quoted:
            return quoted[1].strip()
        if quoted_only:
            return None
        if ":" in raw_text:
            after = raw_text.split(":", 1)[1].strip()
            if after:
                return after
        u = prepare(raw_text, self._words)
        for start in range(len(u.tokens)):
            size = self._words.title_markers.at(u.tokens, start)
            if size and start + size < len(u.tokens):
                return u.typed_words(start + size, len(u.tokens)).rstrip("?.! ")
        return None

    def missing(self, intent: str, tagged: Tagged, raw_text: str, partial: list[TemplateParse]) -> bool:
        """A required slot the message gives no value for (and has no default)."""
        spec = self._intents[intent]
        return any(self.evidence(slot, tagged, raw_text, intent) is None and slot not in spec.defaults
                   and not any(p.intent == intent and slot in p.raw for p in partial)
                   for slot in spec.required)

    def anchored(self, intent: str, tagged: Tagged) -> bool:
        """An intent with anchor words (words.yaml) is a reading only when the message has one of them, or
        names a value of one of its slots other than a task ("hvornår er go-live?": a milestone)."""
        anchors = self._words.anchors.get(intent)
        if anchors is None or anchors.find(tagged.words):
            return True
        return any(tagged.first(slot) for slot in self._intents[intent].slots if slot != "task")

    # -- filling ----------------------------------------------------------------------------------------------
    def fill(self, spec: IntentSpec, tagged: Tagged, u: Utterance, raw_text: str,
             partial: list[TemplateParse]) -> tuple[dict[str, Any], dict[str, Lookup], bool]:
        """The intent's slots from what the message names; and whether a name was only guessed at."""
        slots: dict[str, Any] = {}
        unresolved: dict[str, Lookup] = {}
        guessed = False
        for slot in spec.slots:
            found = self.evidence(slot, tagged, raw_text, spec.name)
            referred = slot == "task" and getattr(found, "value", None) == "@ref" and spec.free_text
            if slot == "task" and (found is None or isinstance(found, TaskGuess) or referred):
                # A name where a command's template has it beats a task guessed from words outside that name
                # ("fjern lokal opgave Informér MED-udvalget": not "Opsæt it-systemet lokalt"); a task guessed
                # from the name's own words is what the name means ("undervisningen af slutbrugerne"); and a title
                # beats a "den" before it ("fjern den lokale opgave Opdater intranet").
                named = self._template_task(spec.name, partial, u, found if isinstance(found, TaskGuess) else None)
                if named is not None:
                    slots[slot], lookup = named
                    if lookup is not None:
                        unresolved[slot] = lookup
                    continue
            if found is None:
                continue
            if isinstance(found, TaskGuess):
                if found.id:
                    slots[slot] = found.id
                    guessed = True
                else:
                    slots[slot] = u.typed
                    unresolved[slot] = Lookup(None, found.candidates, tie=True)
            elif slot == "phase":
                slots[slot] = int(found.value) if found.kind == "phase" else f"@{found.value}"
            elif slot == "numbers":
                slots[slot] = " ".join(str(f.value) for f in tagged.all("number"))
            elif isinstance(found, str):
                slots[slot] = found
            else:
                slots[slot] = found.value
        for parse in sorted(partial, key=lambda p: -p.literal):  # slots the message gives only as text a
            # template found ("hvad er en superbruger"); the template that read most of the message first
            if parse.intent != spec.name:
                continue
            missing: dict[str, str] = {k: v for k, v in parse.raw.items() if k in spec.slots and k not in slots}
            if missing:
                reading = as_typed_reading(self._templates.resolve_all(spec.name, missing, suggest=True), u)
                for name in missing:
                    lookup = reading.unresolved.get(name)
                    # A task's text is kept if it names tasks (to ask which) or may be a name the bot does not
                    # know (a local task); not if it is only words ("undo pls, wrong task").
                    if name == "task" and lookup is not None and not lookup.ambiguous and \
                            not self.name_like(reading.slots[name]):
                        continue
                    slots[name] = reading.slots[name]
                    if lookup is not None:
                        unresolved[name] = lookup
                guessed = guessed or bool(reading.doubts)
            break
        return slots, unresolved, guessed

    def _template_task(self, intent: str, partial: list[TemplateParse], u: Utterance,
                       guess: TaskGuess | None) -> tuple[Any, Lookup | None] | None:
        """The task as a template of the intent reads it, when it resolves as written or looks like a name."""
        for parse in sorted(partial, key=lambda p: -p.literal):
            if parse.intent != intent or "task" not in parse.raw:
                continue
            if guess is not None and (guess.id or guess.candidates) and \
                    guess.places <= _places_of(u, parse.raw["task"]):
                return None  # the words found the task(s) inside the name: they say what it means
            reading = as_typed_reading(self._templates.resolve_all(intent, {"task": parse.raw["task"]}, suggest=True), u)
            lookup = reading.unresolved.get("task")
            if lookup is None and not reading.doubts:
                return reading.slots["task"], None
            # Kept as the name meant when it looks like one, or when the template holds it on both sides
            # ("marker blockchain som udført"); not after a bare verb ("undo pls, wrong task").
            if self.name_like(reading.slots["task"]) or parse.literal >= _SPECIFIC:
                return reading.slots["task"], lookup
        return None

    def name_like(self, typed: str) -> bool:
        """Text that may be a name the bot does not know (a local task's title: "Informér MED-udvalget"), not
        just everyday words ("undo pls, wrong task"): a capital letter, or a word people rarely write."""
        return any(ch.isupper() for ch in typed) or any(not self._lexicon.common(w) for w in words(typed))

    def shape(self, partial: list[TemplateParse], tagged: Tagged, allowed: set[str], u: Utterance) -> str | None:
        """The intent of the template that reads most of the message and whose names are not known: a
        capitalised or rare word in them ("tilmeld Atlantis"), not everyday words ("hvad er vejret")."""
        for parse in sorted(partial, key=lambda p: -p.literal):
            names = [v for k, v in parse.raw.items() if k in LOOKUP_SLOTS]
            if parse.intent in allowed and names and self.anchored(parse.intent, tagged) and \
                    all(self.name_like(as_typed(u.typed, name)) for name in names):
                return parse.intent
        return None


def _places_of(u: Utterance, folded_part: str) -> set[int]:
    """The words of the message inside a folded stretch of it."""
    start = u.folded.find(folded_part)
    if start < 0:
        return set()
    end = start + len(folded_part)
    return {i for i, (a, b) in enumerate(u.places) if a >= start and b <= end}
