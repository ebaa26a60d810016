"""Utterance -> intent + slots. Templates (hassil) find the shape; name indexes resolve the slots.

Pipeline:
1. Clean and fold the text.
2. Parse it with the templates of both languages (people mix them: "what's next in Forberedelse?"). hassil
   runs only on the templates the text could match by how it starts and ends and the words it has
   (dialogs/templates.py), which yields the same matches as running it on all of them. A parse is an
   intent, its slots' raw text, and how much of the text the template's own words matched.
3. The answer is the best parse: all slots resolved against content beats not, then most literal text,
   then intent priority; on a tie, the one found first. Parses are looked up in the order they would
   rank if resolved, so the first that resolves is the answer and the rest are never looked up (a name
   that is not found costs a fuzzy search over all names).
4. If none resolves as typed, correct misspelt template words ("betyer" -> "betyder") and do 2-3 again on
   the corrected texts. If still none resolves, the answer is the best unresolved parse; only that one
   gets the closest-name suggestions (a slow fuzzy pass) that replies offer.
5. No parse at all: accept a bare name ("go-live?", "fase 2").
"""
from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass, field, replace
from typing import Any

from hassil import Intents
from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein

from content import Content
from dialogs.names import Lookup, NameIndex
from dialogs.templates import Templates
from dialogs.text import MAX_UTTERANCE, as_typed, clean, fold, words

# A person's name: up to four words, none of them a sentence's small words.
_PERSON = re.compile(r"^@?(?!.*\b(?:er|is|som|as|for|til|to|og|and|skal|will)\b)\S+(?:\s+\S+){0,3}$")
# Wildcards kept as the user's own text: a date to parse, criterion numbers with a note.
_FREE_TEXT_SLOTS = {"date", "numbers", "person", "title"}
# Slots whose wildcard text is looked up in content; the others come from fixed hassil lists.
_LOOKUP_SLOTS = ("municipality", "phase", "theme", "term", "term2", "task", "wave")
# Words people put around a name that are not part of it ("temaet X", "the X", "X Kommune", "X i modellen").
_FILLER = re.compile(r"^(?:(?:et|en|den|det|the|a|an|our|vores|temaet|tema|theme|opgaven|opgave|task|fasen|begrebet|"
                     r"nr|no|nummer|number|kommune)\s+)+")
_TRAILER = re.compile(r"(?:\s+(?:kommune|kommunes|municipality|i modellen|in the model|for noget|pls|please|tak))+$")
# Politeness and greetings around a command ("hej, hvad kan du?", "status pls").
_POLITE_END = re.compile(r"(?:\s+(?:pls|plz|please|venligst|tak))+$")
_GREETING_START = re.compile(r"^(?:hej|hi|hello|hey|goddag|davs)\s+(?=\S)")
# A "hvad er X" whose X is not in the model is more likely not a glossary question at all ("hvad er vejret?");
# these words show the user did ask for a definition.
_DEFINING = re.compile(r"betyd|defin|mean|begreb|ordet|forstaas|menes")
# When two templates match equally well, the earlier intent wins. Resolved candidates always beat unresolved.
_PRIORITY = ("add_local", "remove_local", "assign", "my_tasks", "portfolio", "lagging", "in_phase", "status_for",
             "export", "set_milestone", "move_phase", "gate_proceed", "gate_reject", "gate_confirm", "compare_terms",
             "phase_info", "theme_info", "next", "status", "history", "reopen", "mark_done", "register",
             "set_language", "help", "task_details", "define")
# Among candidates whose slots did not resolve, the one whose reply helps most wins.
_UNRESOLVED_PRIORITY = ("define", "register", "status_for", "compare_terms", "history", "reopen", "mark_done",
                        "remove_local", "assign", "task_details", "lagging", "in_phase", "move_phase", "theme_info",
                        "phase_info", "next", "status", "set_language", "help", "set_milestone", "gate_proceed",
                        "gate_reject", "gate_confirm", "add_local", "my_tasks", "portfolio", "export")


@dataclass(frozen=True)
class _Parse:
    """One template's reading of the text, before its slots are looked up."""
    intent: str
    raw: dict[str, str]  # slot -> its text (wildcards) or list value
    literal: int  # characters of the text not taken by name/free-text wildcards: the template's own words


@dataclass(frozen=True)
class Understanding:
    intent: str
    slots: dict[str, Any] = field(default_factory=dict)  # resolved values; raw text where unresolved
    unresolved: dict[str, Lookup] = field(default_factory=dict)  # slot -> candidates/suggestions
    text: str = ""  # the cleaned utterance


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


class Understander:
    def __init__(self, content: Content):
        self._templates = Templates([Intents.from_dict(_fold_templates(doc)) for doc in content.sentences.values()])
        self._codes = {m.code for m in content.municipalities}
        names = {
            "municipality": {m.code: [m.name, f"{m.name} kommune", f"{m.name}s kommune", *m.aliases]
                             for m in content.municipalities},
            "phase": {str(p.number): [p.id, p.name.da, p.name.en, f"fase {p.number}", f"phase {p.number}",
                                      *p.aliases.all()] for p in content.phases},
            "theme": {t.id: [t.id, t.name.da, t.name.en, *t.aliases.all()] for t in content.themes},
            "term": {t.id: [t.id, t.term.da, t.term.en, *t.synonyms.all()] for t in content.terms},
            "task": {t.id: [t.title.da, t.title.en, *t.aliases.all()] for t in content.tasks},
        }
        names["wave"] = {w.id: [w.id, w.name.da, w.name.en, f"bølge {i}", f"wave {i}"]
                         for i, w in enumerate(content.project.waves, start=1)}
        self.municipalities, self.phases, self.themes, self.terms, self.tasks, self.waves = (
            NameIndex(names[kind]) for kind in ("municipality", "phase", "theme", "term", "task", "wave"))
        self._index = {"municipality": self.municipalities, "phase": self.phases, "theme": self.themes,
                       "term": self.terms, "term2": self.terms, "task": self.tasks, "wave": self.waves}
        # Words of names are never "corrected" towards a template word; misspelt template words are.
        self._content_words = {w for group in names.values() for item in group.values() for n in item for w in words(n)}
        template_text = " ".join(_strings(content.sentences))
        self._cached = functools.lru_cache(maxsize=4096)(self._understand)
        self._template_words = sorted({w for w in words(re.sub(r"[{<][^}>]*[}>]", " ", template_text)) if len(w) >= 3})

    # -- public -----------------------------------------------------------------------------------
    def understand(self, text: str, people: frozenset[str] = frozenset()) -> Understanding:
        """`people`: names of persons @mentioned in the message, kept as words (the bot's mention is dropped).

        Results are cached: chat repeats itself ("status", "hvad skal vi nu?"), and understanding is pure."""
        return self._cached(text[:MAX_UTTERANCE * 4] if text else "", people)

    def _understand(self, text: str, people: frozenset[str]) -> Understanding:
        cleaned = clean(text, people)
        folded = _GREETING_START.sub("", _POLITE_END.sub("", fold(cleaned)))
        if not any(ch.isalnum() for ch in folded):
            return Understanding("unknown", text=cleaned)
        best = self._best(folded)
        if best and best.intent == "define" and "term" in best.unresolved and not _DEFINING.search(folded):
            best = None
        if best is None:
            return Understanding("unknown", text=cleaned)
        # Free text (unresolved names, dates, notes) is echoed or parsed: give it back as typed, not folded.
        free = set(best.unresolved) | (set(best.slots) & _FREE_TEXT_SLOTS)
        typed = {name: as_typed(cleaned, str(best.slots[name])) for name in free}
        return replace(best, slots={**best.slots, **typed}, text=cleaned)

    # -- matching ---------------------------------------------------------------------------------
    def _best(self, folded: str) -> Understanding | None:
        """The best parse: resolved beats unresolved, then more literal text, then priority; ties: first found."""
        parses = self._parses(folded)
        best = self._first_resolved(parses)
        if best is None:  # nothing resolved as typed: try with typos corrected
            corrected = [parse for variant in self._corrections(folded) for parse in self._parses(variant)]
            best = self._first_resolved(corrected)
            if best is None:
                best = self._best_unresolved(parses + corrected)
        return best if best is not None else self._bare_name(folded)

    def _parses(self, folded: str) -> list[_Parse]:
        parses = []
        for result in self._templates.recognize(folded):
            raw = {name: str(e.value).strip() for name, e in result.entities.items()}
            wildcard_chars = sum(len(str(e.text or e.value)) for n, e in result.entities.items()
                                 if n in _LOOKUP_SLOTS or n in _FREE_TEXT_SLOTS)
            parses.append(_Parse(result.intent.name, raw, len(folded) - wildcard_chars))
        return parses

    def _first_resolved(self, parses: list[_Parse]) -> Understanding | None:
        """The best parse whose slots all resolve, or None: tries the parses in the order they would rank if
        resolved, so the first that does outranks every other that does. The sort is stable: among equal
        ranks the first found is tried first, as max() over the ranks would pick it."""
        for parse in sorted(parses, key=lambda p: (p.literal, -_PRIORITY.index(p.intent)), reverse=True):
            understanding = self._resolve(parse.intent, parse.raw, suggest=False)
            if not understanding.unresolved:
                return understanding
        return None

    def _best_unresolved(self, parses: list[_Parse]) -> Understanding | None:
        """Of parses none of which resolves, the one whose reply helps most, with suggestions for its slots."""
        if not parses:
            return None
        best = max(parses, key=lambda p: (p.literal, -_UNRESOLVED_PRIORITY.index(p.intent)))
        return self._resolve(best.intent, best.raw)

    def _resolve(self, intent: str, raw: dict[str, str], suggest: bool = True) -> Understanding:
        """`suggest=False`: unresolved slots get no closest-name suggestions (only whether they resolve counts)."""
        slots: dict[str, Any] = {}
        unresolved: dict[str, Lookup] = {}
        for name, value in raw.items():
            if name == "person" and not _PERSON.match(value):
                slots[name] = value
                unresolved[name] = Lookup()  # "brugere er færdig" is a sentence, not a name
                continue
            if name not in _LOOKUP_SLOTS:
                slots[name] = value
                continue
            # Try the words as typed first: "tema" is a filler in "temaet Viden" but the name in "hvad er et tema".
            for attempt in dict.fromkeys((value, _TRAILER.sub("", value), _TRAILER.sub("", _FILLER.sub("", value)))):
                resolved, lookup = self.resolve(name, attempt.strip(), suggest)
                if resolved is not None:
                    break
            value = attempt.strip()
            slots[name] = resolved if resolved is not None else value
            if resolved is None:
                unresolved[name] = lookup
        return Understanding(intent, slots, unresolved)

    def resolve(self, slot: str, value: str, suggest: bool = True) -> tuple[Any, Lookup]:
        """One slot's text -> (content id or list number, lookup). Public: dialogs re-resolve button data.

        `suggest=False` leaves out the closest guesses of a name that matched nothing (see NameIndex.lookup)."""
        digits = value.replace(" ", "")
        if slot == "task" and digits.isdigit() and len(digits) <= 3:
            return int(digits), Lookup(digits)
        if slot == "municipality" and digits.isdigit():
            code = digits.zfill(4)  # "kommune 751" -> "0751"
            return (code, Lookup(code)) if code in self._codes else (None, Lookup())
        if slot == "phase" and digits.isdigit():
            return (int(digits), Lookup(digits)) if 1 <= int(digits) <= 4 else (None, Lookup())
        lookup = self._index[slot].lookup(value, suggest)
        if lookup.id is None:
            return None, lookup
        return (int(lookup.id) if slot == "phase" else lookup.id), lookup

    def _corrections(self, folded: str) -> list[str]:
        """The text with words near a template word ("betyer", "fsae", "dnoe") replaced, and not content names.

        A word equally near two template words ("tilmel": tilmeld, tildel) gives one variant for each."""
        options: list[list[str]] = []
        for token in folded.split():
            choices = [token]
            if len(token) >= 4 and token not in self._content_words and token not in self._template_words:
                allowed = 1 if len(token) <= 5 else 2  # edits, a swap of two letters counting as one
                near = process.extract(token, self._template_words, scorer=DamerauLevenshtein.distance,
                                       score_cutoff=allowed, limit=3)
                if near:
                    best = min(score for _, score, _ in near)
                    choices = [word for word, score, _ in near if score == best]
            options.append(choices)
        variants = [" ".join(combo) for combo in itertools.islice(itertools.product(*options), 6)]
        return [v for v in variants if v != folded]

    def _bare_name(self, folded: str) -> Understanding | None:
        """A message that is only a name: a term, a phase, a theme or a municipality."""
        name = _TRAILER.sub("", _FILLER.sub("", folded)).strip()
        # A phase first: "fase 2" or "Forberedelse" alone asks about the phase, whose answer includes its focus.
        for intent, slot in (("phase_info", "phase"), ("define", "term"), ("theme_info", "theme"), ("register", "municipality")):
            value, _ = self.resolve(slot, name, suggest=False)
            if value is not None:
                return Understanding(intent, {slot: value})
        return None
