"""The templates (content/sentences/<lang>/templates.yaml, hassil) read a message, and their slots' text is
looked up: a command in a known shape, precisely ("marker Udpeg projektleder som udført").

A parse whose slots all resolve is a reading on its own; the others still say something: the shape of a
command with a name the bot does not know ("tilmeld Atlantis", "fjern lokal opgave Informér MED-udvalget").
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from hassil import Intents

from content import Content
from dialogs.text import as_typed, fold, words
from dialogs.understanding.names import Lookup, NameIndex
from dialogs.understanding.reading import FREE_TEXT_SLOTS, LOOKUP_SLOTS, TemplateParse, Understanding, body_text
from dialogs.understanding.templates import Templates
from dialogs.understanding.utterance import Utterance
from dialogs.understanding.words import Words

_MAX_PERSON_WORDS = 4


def _fold_templates(node: Any) -> Any:
    """Fold every string of a hassil YAML document the same way input is folded."""
    if isinstance(node, str):
        return fold(node)
    if isinstance(node, list):
        return [_fold_templates(n) for n in node]
    if isinstance(node, dict):
        return {k: _fold_templates(v) if k not in ("out", "language") else v for k, v in node.items()}
    return node


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return []


def template_words(content: Content) -> set[str]:
    """The templates' own words (not their slots and rules): words the bot knows."""
    text = " ".join(_strings(content.sentences))
    return set(words(re.sub(r"[{<][^}>]*[}>]", " ", text)))


class TemplateReader:
    def __init__(self, content: Content, words_: Words, indexes: dict[str, NameIndex], correct: Callable[[str], str]):
        """`indexes`: slot -> the names it is looked up in; `correct`: a word -> the known word it misspells."""
        self._templates = Templates([Intents.from_dict(_fold_templates(doc)) for doc in content.sentences.values()])
        self._words = words_
        self._index = indexes
        self._correct = correct
        self._codes = {m.code for m in content.municipalities}

    def read(self, u: Utterance, allowed: set[str]) -> tuple[Understanding | None, list[TemplateParse]]:
        """The best template reading whose slots all resolve, and every parse of the sender's intents (for
        slots another reading takes from them: "hvad er en superbruger?" gives the term "superbruger")."""
        text = body_text(u)
        parses = self.parses(text)
        corrected = " ".join(self._correct(w) for w in text.split())
        if corrected != text and self._first_resolved(parses) is None:  # try with misspelt words corrected
            parses += self.parses(corrected)
        # The sender's own intents first; a consultant's command from anyone else only if nothing else fits,
        # and then it is answered with why not ("oversigt" from a project team: for KOMBIT's consultants).
        mine = [p for p in parses if p.intent in allowed]
        best = self._first_resolved(mine) or self._first_resolved([p for p in parses if p.intent not in allowed])
        if best is None:
            return None, mine
        return as_typed_reading(best, u), mine

    def parses(self, text: str) -> list[TemplateParse]:
        parses = []
        for result in self._templates.recognize(text):
            raw = {name: str(e.value).strip() for name, e in result.entities.items()}
            wildcard_chars = sum(len(str(e.text or e.value)) for n, e in result.entities.items()
                                 if n in LOOKUP_SLOTS or n in FREE_TEXT_SLOTS)
            sentence = result.intent_sentence.text if result.intent_sentence else ""
            parses.append(TemplateParse(result.intent.name, raw, len(text) - wildcard_chars, sentence))
        return parses

    def _first_resolved(self, parses: list[TemplateParse]) -> Understanding | None:
        """The parse with the most literal text whose slots all resolve (ties: the first found)."""
        for parse in sorted(parses, key=lambda p: p.literal, reverse=True):
            if parse.intent == "define" and self._words.possessives.at(words(parse.raw.get("term", "")), 0):
                continue  # "hvad er vores go-live dato?" asks for the date, not what go-live means
            understanding = self.resolve_all(parse.intent, parse.raw)
            if not understanding.unresolved:
                return replace(understanding, why=f"template «{parse.template}»")
        return None

    def resolve_all(self, intent: str, raw: dict[str, str], suggest: bool = False) -> Understanding:
        """A parse's slots looked up; a name found only from a typo or a part of it is a doubt."""
        slots: dict[str, Any] = {}
        unresolved: dict[str, Lookup] = {}
        guessed: list[str] = []
        for name, value in raw.items():
            if name == "person":
                person = self._person(value)
                slots[name] = person or value
                if person is None:
                    unresolved[name] = Lookup()  # "hvem", "brugere er færdig": a question or a sentence, no name
                continue
            if name == "numbers" and not self._numbers_first(value):
                slots[name] = value
                unresolved[name] = Lookup()  # "nej vent, det var forkert": no criterion numbers
                continue
            if name not in LOOKUP_SLOTS:
                slots[name] = value
                continue
            resolved, lookup = None, Lookup()
            for attempt in self.name_attempts(value):
                resolved, lookup = self.resolve(name, attempt, suggest=suggest)
                if resolved is not None:
                    break
            slots[name] = resolved if resolved is not None else value
            if resolved is None:
                unresolved[name] = lookup
            elif not lookup.exact:
                guessed.append(name)
        return Understanding(intent, slots, unresolved, doubts=tuple(f"{name} read from a near name" for name in guessed))

    def _numbers_first(self, value: str) -> bool:
        """Criterion numbers come first ("1 og 3", "2: mangler budget", "alle"): not a sentence that happens to
        hold a number ("styregruppen har besluttet … kriterie 3 …")."""
        tokens = words(value)
        tokens = tokens[self._words.number_words.at(tokens, 0):]
        return bool(tokens) and (tokens[0].isdigit() or bool(self._words.all_words.at(tokens, 0)))

    def name_attempts(self, value: str) -> list[str]:
        """The text as typed, then without the words around a name ("temaet Viden", "Aarhus Kommune")."""
        tokens = words(value)
        start, end = 0, len(tokens)
        while (size := self._words.name_before.at(tokens, start)) and start + size < end:
            start += size
        while (size := self._words.name_after.ending(tokens, end)) and end - size > start:
            end -= size
        return list(dict.fromkeys((value, " ".join(tokens[start:end]))))

    def _person(self, value: str) -> str | None:
        """A name a person goes by ("Mette", "Lars Nielsen", "@Lars"), "@me" for "mig"/"me", else None."""
        tokens = words(value)
        if not tokens or len(tokens) > _MAX_PERSON_WORDS:
            return None
        w = self._words
        if w.me.whole(tokens):
            return "@me"
        not_names = (w.question_words, w.question_verbs, w.task_references, w.hedges, w.negations, w.me)
        if any(phrases.at(tokens, i) for phrases in not_names for i in range(len(tokens))):
            return None
        if any(t in w.stopwords for t in tokens):
            return None
        return value.lstrip("@").strip()

    def resolve(self, slot: str, value: str, suggest: bool = True, exact: bool = False) -> tuple[Any, Lookup]:
        """One slot's text -> (content id, list number or reference; lookup). `suggest=False` leaves out the
        closest guesses of a name not found; `exact`: a name as written (or inflected) only."""
        tokens = words(value)
        if slot == "task" and self._words.task_references.whole(tokens):
            return "@ref", Lookup("@ref")
        if slot == "phase":
            for reference, phrases in self._words.phase_references.items():
                if phrases.whole(tokens):
                    return f"@{reference}", Lookup(f"@{reference}")
        digits = value.replace(" ", "")
        if slot == "task" and digits.isdigit() and len(digits) <= 3:
            return int(digits), Lookup(digits)
        if slot == "municipality" and value.strip().isdigit():  # a code as typed: "15/3" is a date, not 0153
            code = value.strip().zfill(4)  # "kommune 751" -> "0751"
            return (code, Lookup(code)) if code in self._codes else (None, Lookup())
        if slot == "phase" and digits.isdigit():
            return (int(digits), Lookup(digits)) if 1 <= int(digits) <= 4 else (None, Lookup())
        lookup = self._index[slot].lookup(value, suggest, exact)
        if lookup.id is None:
            return None, lookup
        return (int(lookup.id) if slot == "phase" else lookup.id), lookup


def as_typed_reading(reading: Understanding, u: Utterance) -> Understanding:
    """Free text (unresolved names, dates, notes) is echoed or parsed: given back as typed, not folded."""
    free = set(reading.unresolved) | (set(reading.slots) & FREE_TEXT_SLOTS)
    typed = {name: as_typed(u.typed, reading.slots[name]) for name in free
             if isinstance(reading.slots[name], str) and not reading.slots[name].startswith("@")}
    return replace(reading, slots={**reading.slots, **typed})
