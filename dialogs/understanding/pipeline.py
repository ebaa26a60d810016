"""Utterance -> intent + slots, and whether the bot may act on it without asking.

1. Prepare (utterance.py): the words; greetings, polite openings and fillers set aside; the kind of sentence.
2. Short answers said alone: "ja", "nej", "tak", "god weekend".
3. Templates (templates.yaml, hassil) for precision: a command in a known shape, its slots looked up.
4. Otherwise the classifier (classifier.py), trained on the examples, over what the message names
   (entities.py): the likeliest intent whose required slots the message gives, slots taken from what it names.
5. Safety (decide): an intent that changes data runs only on a command or a clear statement. A question in
   its shape is answered by its read-only twin ("er X udført?" -> task_status); a hedged or negated message,
   or a classifier reading without a cue word, is asked about first ("Mener du, at «X» er udført?").

Every decision is explained in `Understanding.why` for the log.
"""
from __future__ import annotations

import functools
import itertools
import weakref
from collections import Counter, defaultdict
import re
from dataclasses import dataclass, field, replace
from typing import Any

from hassil import Intents

from content import Content
from content.schema import IntentSpec
from dialogs.text import MAX_UTTERANCE, as_typed, fold, words
from dialogs.understanding.classifier import IntentClassifier
from dialogs.understanding.entities import Found, Tagged, Tagger, TaskGuess
from dialogs.understanding.features import features
from dialogs.understanding.features import shape as shape_of
from dialogs.understanding.language import LanguageGuess
from dialogs.understanding.lexicon import Lexicon
from dialogs.understanding.names import Lookup, NameIndex
from dialogs.understanding.templates import Templates
from dialogs.understanding.utterance import Utterance, prepare
from dialogs.understanding.words import Words

# Wildcards kept as the user's own text: a date to parse, criterion numbers with a note, a name, a title.
_FREE_TEXT_SLOTS = {"date", "numbers", "person", "title"}
# Slots whose wildcard text is looked up in content; the others come from fixed lists or are free text.
_LOOKUP_SLOTS = ("municipality", "phase", "theme", "term", "term2", "task", "wave")
_SURE = 0.85  # a classifier reading of a change needs this probability (and a cue word) to act without asking
_EVERYDAY_WORD = 4.5  # Zipf frequency from which a word is too common to stand for a municipality alone
_SPECIFIC = 10  # letters of its own a template needs before a name inside it counts as meant as a name
_NAME_WORDS = 5  # a message this long or shorter may be only a name ("Ringkøbing-Skjern Kommune")
_READINGS = 8  # how many of the classifier's likeliest intents are weighed further
_SHAPE = 4.0  # how much likelier an intent is when one of its templates has the message's shape (an unknown name in it)
_FLOOR = 0.3  # below this the classifier's best guess is no answer: the message is not understood
_WORD = re.compile(r"\w+")
_QUOTED = re.compile(r"[\"'«»“”‘’](.+?)[\"'«»“”‘’]")
_MAX_PERSON_WORDS = 4


@dataclass(frozen=True)
class Understanding:
    intent: str
    slots: dict[str, Any] = field(default_factory=dict)  # resolved values; raw text where unresolved
    unresolved: dict[str, Lookup] = field(default_factory=dict)  # slot -> candidates/suggestions
    text: str = ""  # the cleaned utterance
    confirm: bool = False  # a change the bot asks about before making it
    language: str | None = None  # the message's language, when it is clear
    why: str = ""  # how it was decided, for the log
    doubts: tuple[str, ...] = ()  # why a change read from it should be asked about first
    by_classifier: bool = False  # read by the classifier, not a template: a change needs a cue word too
    # The next likeliest readings, (intent, slots), for a reply that offers them ("Mente du …?").
    alternatives: tuple[tuple[str, dict], ...] = ()


@dataclass(frozen=True)
class _Parse:
    """One template's reading of the text, before its slots are looked up."""
    intent: str
    raw: dict[str, str]  # slot -> its text (wildcards) or list value
    literal: int  # characters of the text not taken by name/free-text wildcards: the template's own words
    template: str


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


def _municipality_parts(content: Content, lexicon: Lexicon) -> dict[str, list[str]]:
    """A part of a two-part name that no other municipality has and that is no everyday word: "Ringkøbing" and
    "Skjern", "Faaborg"; not "Høje" (Høje-Taastrup)."""
    parts: dict[str, list[str]] = defaultdict(list)
    for m in content.municipalities:
        for part in re.split(r"[- ]+", m.name):
            if len(part) >= 4 and part != m.name:
                parts[part.lower()].append(m.code)
    names_of = {m.name.lower() for m in content.municipalities}
    out: dict[str, list[str]] = defaultdict(list)
    for part, codes in parts.items():
        if len(codes) == 1 and part not in names_of and lexicon.zipf(fold(part), "da") < _EVERYDAY_WORD:
            out[codes[0]].append(part)
    return out


def content_names(content: Content, lexicon: Lexicon) -> dict[str, dict[str, list[str]]]:
    """kind -> id -> every name it goes by: what both the templates' lookups and the tagger search."""
    parts = _municipality_parts(content, lexicon)
    names = {
        "municipality": {m.code: [m.name, f"{m.name} kommune", f"{m.name}s kommune", *m.aliases, *parts.get(m.code, [])]
                         for m in content.municipalities},
        "phase": {str(p.number): [p.id, p.name.da, p.name.en, f"fase {p.number}", f"phase {p.number}",
                                  *p.aliases.all()] for p in content.phases},
        "theme": {t.id: [t.id, t.name.da, t.name.en, *t.aliases.all()] for t in content.themes},
        "term": {t.id: [t.id, t.term.da, t.term.en, *t.synonyms.all()] for t in content.terms},
        "task": {t.id: [t.title.da, t.title.en, *t.aliases.all()] for t in content.tasks},
        # A wave by its name, its number, or its place ("anden bølge", "the second wave").
        "wave": {w.id: [w.id, w.name.da, w.name.en, f"bølge {i}", f"wave {i}", f"{i}. bølge",
                        *(f"{o} {noun}" for lang in sorted(content.words) for o in content.words[lang].ordinals.get(i, ())
                          for noun in ("bølge", "wave"))]
                 for i, w in enumerate(content.project.waves, start=1)},
    }
    return names


_BUILT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class Understander:
    @classmethod
    def of(cls, content: Content) -> Understander:
        """The understander for this content, trained once: understanding is pure, so servers sharing one
        validated content (the test suite's, or a reload of the same files) share it too."""
        built = _BUILT.get(content)
        if built is None:
            built = _BUILT[content] = cls(content)
        return built

    def __init__(self, content: Content):
        self.intents: dict[str, IntentSpec] = content.intents
        self.words = Words.of(content)
        self._templates = Templates([Intents.from_dict(_fold_templates(doc)) for doc in content.sentences.values()])
        self._codes = {m.code for m in content.municipalities}
        self.lexicon = Lexicon()
        names = content_names(content, self.lexicon)
        self.municipalities, self.phases, self.themes, self.terms, self.tasks, self.waves = (
            NameIndex(names[kind]) for kind in ("municipality", "phase", "theme", "term", "task", "wave"))
        self._index = {"municipality": self.municipalities, "phase": self.phases, "theme": self.themes,
                       "term": self.terms, "term2": self.terms, "task": self.tasks, "wave": self.waves}
        self._term_ids = {t.id for t in content.terms}
        template_text = " ".join(_strings(content.sentences))
        template_words = set(words(re.sub(r"[{<][^}>]*[}>]", " ", template_text)))
        example_words = _lower_case_words(text for _, text, _ in self._sentences(content))
        # A word of the sentences is a word the bot knows (never "corrected") if people commonly write it or it
        # comes up more than once: a one-off is likely a typo in the examples themselves ("stauts").
        example_words = {w for w, n in example_words.items() if n >= 2 or self.lexicon.common(w)}
        self.tagger = Tagger(names, self.words, template_words | example_words, self.lexicon)
        self.language = LanguageGuess(self.lexicon)
        # Words seen once in all the sentences count as unknown in training, as unseen words do in use, so
        # the classifier learns what a message of words it does not know tends to be (out of scope, or a title).
        read = [(intent, example, u, self.tagger.tag(u)) for intent, example, u in self._training(content)]
        counts = Counter(w for _, _, u, tagged in read for w in {tagged.words[i] for i in u.body})
        self._known = frozenset(w for w, n in counts.items() if n >= 2)
        self.classifier = IntentClassifier((features(u, tagged, self._known), intent) for intent, _, u, tagged in read)
        self.examples, self.conflicts = self._remember((intent, u, tagged) for intent, example, u, tagged in read
                                                       if example)
        self._cached = functools.lru_cache(maxsize=4096)(self._understand)
        self._titles = functools.lru_cache(maxsize=256)(self._title_in)

    @staticmethod
    def _sentences(content: Content):
        """(intent, text, is an example) of every example and training sentence, each once."""
        seen = set()
        for lang in sorted(content.examples):
            pairs = [(intent, e.text, True) for intent, examples in content.examples[lang].intents.items()
                     for e in examples.all()]
            if lang in content.training:
                pairs += [(intent, text, False) for intent, texts in content.training[lang].intents.items()
                          for text in texts]
            for intent, text, example in pairs:
                if (intent, text) not in seen:
                    seen.add((intent, text))
                    yield intent, text, example

    def _remember(self, examples) -> tuple[dict[str, str], dict[str, set[str]]]:
        """Each example's shape (features.shape) -> its intent: an example is understood as written, with any
        name of the same kind in it. Two examples of different intents with one shape are a conflict in the
        examples (a test names them), and that shape is left to the classifier."""
        seen: dict[str, set[str]] = defaultdict(set)
        for intent, u, tagged in examples:
            if self._short_answer(u) is None:  # "ja", "tak": answered before any shape is looked at
                seen[shape_of(u, tagged)].add(intent)
        remembered = {key: next(iter(intents)) for key, intents in seen.items() if len(intents) == 1}
        return remembered, {key: intents for key, intents in seen.items() if len(intents) > 1}

    def _training(self, content: Content):
        for intent, text, example in self._sentences(content):
            yield intent, example, prepare(text, self.words)

    # -- public -----------------------------------------------------------------------------------
    def understand(self, text: str, people: frozenset[str] = frozenset(), consultant: bool = False) -> Understanding:
        """`people`: names of persons @mentioned in the message, kept as words (the bot's mention is dropped).
        `consultant`: the sender is one of KOMBIT's consultants; only they mean the consultants' intents
        ("hvordan går det i Aarhus?" from Aarhus's own team asks for its status).

        Results are cached: chat repeats itself ("status", "hvad skal vi nu?"), and understanding is pure."""
        return self._cached(text[:MAX_UTTERANCE * 4] if text else "", people, consultant)

    def explain(self, text: str) -> list[str]:
        """The classifier's ranking of a message, for a person tuning the examples."""
        utterance = prepare(text, self.words)
        tagged = self.tagger.tag(utterance)
        ranked = self.classifier.rank(features(utterance, tagged, self._known))
        return [f"{r.intent} {r.probability:.2f}" for r in ranked[:5]]

    def _understand(self, text: str, people: frozenset[str], consultant: bool) -> Understanding:
        utterance = prepare(text, self.words, people)
        short = self._short_answer(utterance)
        if short is not None:
            return replace(short, text=utterance.typed, language=self.language.of(utterance.tokens))
        allowed = {name for name, spec in self.intents.items() if consultant or not spec.consultant}
        tagged = self.tagger.tag(utterance, people)
        # The language of the words around the names: "assign Appoint super users to Lars Nielsen" is English.
        named = {i for f in tagged.found if f.kind in ("person", "municipality", "task") for i in range(f.start, f.end)}
        language = self.language.of([t for i, t in enumerate(utterance.tokens) if i not in named])
        reading = self._by_example(utterance, tagged, text, allowed, [])
        if reading is None or reading.unresolved or reading.doubts or any(
                slot not in reading.slots and (need == "required" or slot in _FREE_TEXT_SLOTS)
                for slot, need in self.intents[reading.intent].slots.items()):
            # The templates: what most messages need, and what an example's reading lacks (an unknown name)
            resolved, partial = self._by_template(utterance, allowed)
            reading = (self._by_example(utterance, tagged, text, allowed, partial) if reading else None) or \
                resolved or self._bare_name(utterance, tagged, consultant) or \
                self._by_classifier(utterance, tagged, text, allowed, partial)
        reading = self._complete(reading, tagged, utterance)
        reading = self._decide(reading, utterance, tagged)
        return replace(reading, text=utterance.typed, language=language)

    # -- 2. short answers -------------------------------------------------------------------------------
    def _short_answer(self, u: Utterance) -> Understanding | None:
        if not u.tokens:
            for intent, phrases in (("yes", self.words.yes), ("no", self.words.no)):
                if u.symbols and any(symbol in u.symbols for symbol in phrases.symbols):
                    return Understanding(intent, why="symbol")
            for kind, phrases in self.words.smalltalk.items():
                if u.symbols and any(symbol in u.symbols for symbol in phrases.symbols):
                    return Understanding("smalltalk", {"kind": kind}, why="symbol")
            return Understanding("unknown", why="no words")
        if self.words.yes.whole(u.tokens):
            return Understanding("yes", why="yes word")
        if self.words.no.whole(u.tokens):
            return Understanding("no", why="no word")
        kinds = []
        at = 0
        while at < len(u.tokens):  # every word small talk: "nice, thanks", "tak og god weekend"
            best = max(((phrases.at(u.tokens, at), kind) for kind, phrases in self.words.smalltalk.items()),
                       key=lambda pair: pair[0])
            if best[0]:
                kinds.append(best[1])
                at += best[0]
            elif u.tokens[at] in ("og", "and") and kinds:
                at += 1
            else:
                return None
        return Understanding("smalltalk", {"kind": kinds[0]}, why="small talk") if kinds else None

    # -- 3. templates ---------------------------------------------------------------------------------------
    def _by_template(self, u: Utterance, allowed: set[str]) -> tuple[Understanding | None, list[_Parse]]:
        """The best template reading whose slots all resolve, and every reading (for slots the classifier's
        intent takes from them: "hvad er en superbruger?" gives the term "superbruger", unresolved)."""
        text = _body_text(u)
        parses = self._parses(text)
        corrected = " ".join(self.tagger.correct(w) for w in text.split())
        if corrected != text and self._first_resolved(parses) is None:  # try with misspelt words corrected
            parses += self._parses(corrected)
        # The sender's own intents first; a consultant's command from anyone else only if nothing else fits,
        # and then it is answered with why not ("oversigt" from a project team: for KOMBIT's consultants).
        mine = [p for p in parses if p.intent in allowed]
        best = self._first_resolved(mine) or self._first_resolved([p for p in parses if p.intent not in allowed])
        if best is None:
            return None, mine
        return self._as_typed(best, u), mine

    @staticmethod
    def _as_typed(reading: Understanding, u: Utterance) -> Understanding:
        """Free text (unresolved names, dates, notes) is echoed or parsed: given back as typed, not folded."""
        free = set(reading.unresolved) | (set(reading.slots) & _FREE_TEXT_SLOTS)
        typed = {name: as_typed(u.typed, reading.slots[name]) for name in free
                 if isinstance(reading.slots[name], str) and not reading.slots[name].startswith("@")}
        return replace(reading, slots={**reading.slots, **typed})

    def _parses(self, text: str) -> list[_Parse]:
        parses = []
        for result in self._templates.recognize(text):
            raw = {name: str(e.value).strip() for name, e in result.entities.items()}
            wildcard_chars = sum(len(str(e.text or e.value)) for n, e in result.entities.items()
                                 if n in _LOOKUP_SLOTS or n in _FREE_TEXT_SLOTS)
            sentence = result.intent_sentence.text if result.intent_sentence else ""
            parses.append(_Parse(result.intent.name, raw, len(text) - wildcard_chars, sentence))
        return parses

    def _first_resolved(self, parses: list[_Parse]) -> Understanding | None:
        """The parse with the most literal text whose slots all resolve (ties: the first found)."""
        for parse in sorted(parses, key=lambda p: p.literal, reverse=True):
            if parse.intent == "define" and self.words.possessives.at(words(parse.raw.get("term", "")), 0):
                continue  # "hvad er vores go-live dato?" asks for the date, not what go-live means
            understanding = self._resolve(parse.intent, parse.raw)
            if not understanding.unresolved:
                return replace(understanding, why=f"template «{parse.template}»")
        return None

    def _resolve(self, intent: str, raw: dict[str, str], suggest: bool = False) -> Understanding:
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
            if name not in _LOOKUP_SLOTS:
                slots[name] = value
                continue
            resolved, lookup = None, Lookup()
            for attempt in self._name_attempts(value):
                resolved, lookup = self.resolve(name, attempt, suggest=suggest)
                if resolved is not None:
                    break
            slots[name] = resolved if resolved is not None else value
            if resolved is None:
                unresolved[name] = lookup
            elif not lookup.exact:
                guessed.append(name)
        return Understanding(intent, slots, unresolved, doubts=tuple(f"{name} read from a near name" for name in guessed))

    @staticmethod
    def _numbers_first(value: str) -> bool:
        """Criterion numbers come first ("1 og 3", "2: mangler budget", "alle"): not a sentence that happens to
        hold a number ("styregruppen har besluttet … kriterie 3 …")."""
        tokens = words(value)
        if tokens and tokens[0] in ("nr", "nummer", "number", "no", "kriterie", "kriterium", "criterion", "til", "to"):
            tokens = tokens[1:]
        return bool(tokens) and (tokens[0].isdigit() or tokens[0] in ("alle", "all", "samtlige", "everything"))

    def _name_attempts(self, value: str) -> list[str]:
        """The text as typed, then without the words around a name ("temaet Viden", "Aarhus Kommune")."""
        tokens = words(value)
        start, end = 0, len(tokens)
        while (size := self.words.name_before.at(tokens, start)) and start + size < end:
            start += size
        while (size := self.words.name_after.ending(tokens, end)) and end - size > start:
            end -= size
        return list(dict.fromkeys((value, " ".join(tokens[start:end]))))

    def _person(self, value: str) -> str | None:
        """A name a person goes by ("Mette", "Lars Nielsen", "@Lars"), "@me" for "mig"/"me", else None."""
        tokens = words(value)
        if not tokens or len(tokens) > _MAX_PERSON_WORDS:
            return None
        if self.words.me.whole(tokens):
            return "@me"
        w = self.words
        not_names = (w.question_words, w.question_verbs, w.task_references, w.hedges, w.negations, w.me)
        if any(phrases.at(tokens, i) for phrases in not_names for i in range(len(tokens))):
            return None
        if any(t in w.stopwords for t in tokens):
            return None
        return value.lstrip("@").strip()

    def resolve(self, slot: str, value: str, suggest: bool = True, exact: bool = False) -> tuple[Any, Lookup]:
        """One slot's text -> (content id, list number or reference; lookup). Public: dialogs re-resolve button
        data and ask for suggestions. `suggest=False` leaves out the closest guesses of a name not found."""
        tokens = words(value)
        if slot == "task" and self.words.task_references.whole(tokens):
            return "@ref", Lookup("@ref")
        if slot == "phase":
            for reference, phrases in self.words.phase_references.items():
                if phrases.whole(tokens):
                    return f"@{reference}", Lookup(f"@{reference}")
        digits = value.replace(" ", "")
        if slot == "task" and digits.isdigit() and len(digits) <= 3:
            return int(digits), Lookup(digits)
        if slot == "municipality" and digits.isdigit():
            code = digits.zfill(4)  # "kommune 751" -> "0751"
            return (code, Lookup(code)) if code in self._codes else (None, Lookup())
        if slot == "phase" and digits.isdigit():
            return (int(digits), Lookup(digits)) if 1 <= int(digits) <= 4 else (None, Lookup())
        lookup = self._index[slot].lookup(value, suggest, exact)
        if lookup.id is None:
            return None, lookup
        return (int(lookup.id) if slot == "phase" else lookup.id), lookup

    def _by_example(self, u: Utterance, tagged: Tagged, raw_text: str, allowed: set[str],
                    partial: list[_Parse]) -> Understanding | None:
        """A message in the shape of one of the examples (any names of the same kinds in it) is read as that
        example is: the examples are what the bot must understand, as precisely as a template."""
        form = shape_of(u, tagged)
        remembered = self.examples.get(form)
        if remembered not in allowed:
            return None
        slots, unresolved, guessed = self._fill(self.intents[remembered], tagged, u, raw_text, partial)
        return Understanding(remembered, slots, unresolved, why=f"an example's shape «{form}»",
                             doubts=("a name read from its words",) if guessed else ())

    def _bare_name(self, u: Utterance, tagged: Tagged, consultant: bool) -> Understanding | None:
        """A message that is only a name asks about it: a phase ("fase 2"), a term ("go-live?"), a theme, or a
        municipality (to register, asked about first; a consultant asks for its status). "faserne?" and
        "temaer?" ask for the overview. Names as written only: a near name alone is too little to go on."""
        text = _body_text(u)
        if not text or len(u.body) > _NAME_WORDS:
            return None
        parts = tagged.all("model_part")
        if len(parts) == 1 and parts[0].start <= u.body[0] and parts[0].end > u.body[-1]:
            intent = f"{parts[0].value}_overview"
            if intent in self.intents:
                return Understanding(intent, why="only the model's phases or themes")
        readings = (("phase_info", "phase"), ("define", "term"), ("theme_info", "theme"),
                    ("status_for" if consultant else "register", "municipality"))
        for intent, slot in readings:
            for attempt in self._name_attempts(text):
                value, lookup = self.resolve(slot, attempt, suggest=False, exact=True)
                if value is not None and lookup.exact and not (isinstance(value, str) and value.startswith("@")):
                    return Understanding(intent, {slot: value}, why=f"only a name ({slot})",
                                         doubts=("only a name",))
        return None

    # -- 4. the classifier ---------------------------------------------------------------------------------
    def _by_classifier(self, u: Utterance, tagged: Tagged, raw_text: str, allowed: set[str],
                       partial: list[_Parse]) -> Understanding:
        seen = features(u, tagged, self._known)
        named = {i for f in tagged.found for i in range(f.start, f.end)}
        plain = [tagged.words[i] for i in u.body if i not in named]
        if plain and not named and all(w not in self._known for w in plain):
            return Understanding("unknown", why="no word the examples know")  # "asdf", "qwerty"
        if self.classifier.known(seen) == 0:
            return Understanding("unknown", why="nothing known")
        # The likeliest readings (the rest weigh nothing), as intent -> probability.
        everything = [(r.intent, r.probability) for r in self.classifier.rank(seen)[:_READINGS]
                      if self._anchored(r.intent, tagged)]
        ranked = [(i, p) for i, p in everything if i in allowed]
        if everything and everything[0][0] not in allowed and (not ranked or ranked[0][1] < _FLOOR):
            ranked = everything  # a consultant's command from someone else: answered with why not
        if not ranked:
            return Understanding("unknown", why="nothing known")
        # A change needs what it changes: one the message does not name is no reading ("kan du minde mig om
        # go-live datoen" is no date to set). A template that has the message's shape but a name it does not
        # know ("tilmeld Atlantis") makes its intent likelier: the name is new, the command is not.
        shaped = {p.intent for p in partial}
        possible = [(i, p * (_SHAPE if i in shaped else 1.0)) for i, p in ranked
                    if not (self.intents[i].changes and self._missing(i, tagged, raw_text, partial))] or ranked
        total = sum(p for _, p in possible) or 1.0
        ranked = sorted(((i, p / total) for i, p in possible), key=lambda r: -r[1])
        chosen = ranked[0]
        if self._missing(chosen[0], tagged, raw_text, partial):  # a close second the message fills in wins
            for other in ranked[1:3]:
                if other[1] * 2 >= ranked[0][1] and not self._missing(other[0], tagged, raw_text, partial):
                    chosen = other
                    break
        intent, probability = chosen
        runner_up = next((i for i, _ in ranked if i != intent), None)
        evidence = ", ".join(self.classifier.why(seen, intent, runner_up))
        why = f"classifier {intent} {probability:.2f} over {runner_up} ({evidence})"
        shape = self._shape(partial, tagged, allowed, u)
        if shape is not None and intent != shape and (intent == "unknown" or probability < _SURE):
            # A command's shape with a name the bot does not know, which the classifier cannot judge: the shape
            intent, probability = shape, 1.0
            why = f"template shape {shape}, a name not known ({why})"

        def offers() -> tuple[tuple[str, dict], ...]:  # for a reply that offers the likeliest readings
            return tuple((i, self._fill(self.intents[i], tagged, u, raw_text, partial)[0])
                         for i, p in ranked[:4] if i not in (intent, "unknown") and p >= 0.05)[:3]

        if probability < _FLOOR or intent == "unknown" or not self._covered(u, tagged):
            if intent != "unknown" and probability >= 0.05:
                return Understanding("unknown", why=why, alternatives=((intent, self._fill(
                    self.intents[intent], tagged, u, raw_text, partial)[0]),) + offers()[:2])
            return Understanding("unknown", why=why, alternatives=offers())
        slots, unresolved, guessed = self._fill(self.intents[intent], tagged, u, raw_text, partial)
        doubts = (("a name read from its words",) if guessed else ()) + (("not sure",) if probability < _SURE else ())
        names_content = any(tagged.first(kind) for kind in ("task", "theme", "phase")) or (
            tagged.task_guess is not None and bool(tagged.task_guess.id or tagged.task_guess.candidates))
        if intent == "define" and ("term" not in slots or "term" in unresolved and not names_content
                                   and not self.words.defining.find(tagged.words)):
            # "hvad er vejret?": a "what is X" about something outside the model, not asking for a definition
            return Understanding("unknown", why=why + "; not a definition question", alternatives=offers())
        return Understanding(intent, slots, unresolved, why=why, doubts=doubts, by_classifier=True)

    def _shape(self, partial: list[_Parse], tagged: Tagged, allowed: set[str], u: Utterance) -> str | None:
        """The intent of the template that reads most of the message and whose names are not known: a
        capitalised or rare word in them ("tilmeld Atlantis"), not everyday words ("hvad er vejret")."""
        for parse in sorted(partial, key=lambda p: -p.literal):
            names = [v for k, v in parse.raw.items() if k in _LOOKUP_SLOTS]
            if parse.intent in allowed and names and self._anchored(parse.intent, tagged) and \
                    all(self._name_like(as_typed(u.typed, name)) for name in names):
                return parse.intent
        return None

    def _anchored(self, intent: str, tagged: Tagged) -> bool:
        """An intent with anchor words (words.yaml) is a reading only when the message has one of them, or
        names a value of one of its slots other than a task ("hvornår er go-live?": a milestone)."""
        anchors = self.words.anchors.get(intent)
        if anchors is None or anchors.find(tagged.words):
            return True
        return any(tagged.first(slot) for slot in self.intents[intent].slots if slot != "task")

    def _covered(self, u: Utterance, tagged: Tagged) -> bool:
        """Whether the examples knew enough of the message's own words to judge it: a long message of words
        never seen ("hvem vinder superligaen i år") is not understood, whatever its best guess."""
        named = {i for f in tagged.found for i in range(f.start, f.end)}
        plain = [tagged.words[i] for i in u.body if i not in named]
        if len(plain) < 3:
            return True
        known = sum(1 for w in plain if self.classifier.knows_word(w))
        return known * 2 >= len(plain)

    def _missing(self, intent: str, tagged: Tagged, raw_text: str, partial: list[_Parse]) -> bool:
        spec = self.intents[intent]
        return any(self._evidence(slot, tagged, raw_text, intent) is None and slot not in spec.defaults
                   and not any(p.intent == intent and slot in p.raw for p in partial)
                   for slot in spec.required)

    def _evidence(self, slot: str, tagged: Tagged, raw_text: str, intent: str = "") -> Any:
        """What the message names for a slot, or None."""
        if slot == "task":
            # A task named outright, by its words or by number; else a quoted name (a local task's title), or
            # any title where the intent takes free text ("slet opgaven om vikarer").
            free = intent in self.intents and slot in self.intents[intent].free_text
            return self._task_evidence(tagged) or self._title(raw_text, quoted_only=not free)
        if slot == "phase":
            return self._phase_evidence(tagged, intent)
        if slot == "term2":
            terms = list(dict.fromkeys(f.value for f in tagged.all("term")))
            return terms[1] if len(terms) > 1 else None
        if slot == "person":
            return tagged.first("person") or tagged.first("me")
        if slot == "numbers":
            return tagged.first("number")
        if slot == "title":
            return self._title(raw_text)
        return tagged.first(slot)

    @staticmethod
    def _task_evidence(tagged: Tagged) -> Any:
        """A task named outright (unless its words clearly point at another), a task its words point at, a
        list number, "den"/"that", or the tasks its words point at equally (to ask which)."""
        guess = tagged.task_guess
        named = tagged.first("task")
        if named:
            return guess if guess and guess.beats(named.value) else named
        if guess and guess.id:
            return guess
        return tagged.first("number") or tagged.first("task_ref") or (guess if guess and guess.candidates else None)

    @staticmethod
    def _phase_evidence(tagged: Tagged, intent: str) -> Any:
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

    def _title(self, raw_text: str, quoted_only: bool = False) -> str | None:
        return self._titles(raw_text or "", quoted_only)

    def _title_in(self, raw_text: str, quoted_only: bool) -> str | None:
        """A local task's title: quoted, after a colon, or after "om"/"called"."""
        quoted = _QUOTED.search(raw_text or "")
        if quoted:
            return quoted[1].strip()
        if quoted_only:
            return None
        if ":" in (raw_text or ""):
            after = raw_text.split(":", 1)[1].strip()
            if after:
                return after
        u = prepare(raw_text, self.words)
        for start in range(len(u.tokens)):
            size = self.words.title_markers.at(u.tokens, start)
            if size and start + size < len(u.tokens):
                return u.typed_words(start + size, len(u.tokens)).rstrip("?.! ")
        return None

    def _fill(self, spec: IntentSpec, tagged: Tagged, u: Utterance, raw_text: str,
              partial: list[_Parse]) -> tuple[dict, dict, bool]:
        """The intent's slots from what the message names; and whether a name was only guessed at."""
        slots: dict[str, Any] = {}
        unresolved: dict[str, Lookup] = {}
        guessed = False
        for slot in spec.slots:
            found = self._evidence(slot, tagged, raw_text, spec.name)
            if slot == "task" and (found is None or isinstance(found, TaskGuess)):
                # A name where a command's template has it beats a task guessed from words outside that name
                # ("fjern lokal opgave Informér MED-udvalget": not "Opsæt it-systemet lokalt"); a task guessed
                # from the name's own words is what the name means ("undervisningen af slutbrugerne").
                named = self._template_task(spec.name, partial, u, found)
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
            elif slot in ("term2", "title") or isinstance(found, str):
                slots[slot] = found
            else:
                slots[slot] = found.value
        for parse in sorted(partial, key=lambda p: -p.literal):  # slots the message gives only as text a
            # template found ("hvad er en superbruger"); the template that read most of the message first
            if parse.intent != spec.name:
                continue
            missing = {k: v for k, v in parse.raw.items() if k in spec.slots and k not in slots}
            if missing:
                reading = self._as_typed(self._resolve(spec.name, missing, suggest=True), u)
                for name in missing:
                    lookup = reading.unresolved.get(name)
                    # A task's text is kept if it names tasks (to ask which) or may be a name the bot does not
                    # know (a local task); not if it is only words ("undo pls, wrong task").
                    if name == "task" and lookup is not None and not lookup.ambiguous and \
                            not self._name_like(reading.slots[name]):
                        continue
                    slots[name] = reading.slots[name]
                    if lookup is not None:
                        unresolved[name] = lookup
                guessed = guessed or bool(reading.doubts)
            break
        return slots, unresolved, guessed

    def _template_task(self, intent: str, partial: list[_Parse], u: Utterance,
                       guess: TaskGuess | None) -> tuple[Any, Lookup | None] | None:
        """The task as a template of the intent reads it, when it resolves as written or looks like a name."""
        for parse in sorted(partial, key=lambda p: -p.literal):
            if parse.intent != intent or "task" not in parse.raw:
                continue
            if guess is not None and (guess.id or guess.candidates) and guess.places <= self._places_of(u, parse.raw["task"]):
                return None  # the words found the task(s) inside the name: they say what it means
            reading = self._as_typed(self._resolve(intent, {"task": parse.raw["task"]}, suggest=True), u)
            lookup = reading.unresolved.get("task")
            if lookup is None and not reading.doubts:
                return reading.slots["task"], None
            # Kept as the name meant when it looks like one, or when the template holds it on both sides
            # ("marker blockchain som udført"); not after a bare verb ("undo pls, wrong task").
            if self._name_like(reading.slots["task"]) or parse.literal >= _SPECIFIC:
                return reading.slots["task"], lookup
        return None

    @staticmethod
    def _places_of(u: Utterance, folded_part: str) -> set[int]:
        """The words of the message inside a folded stretch of it."""
        start = u.folded.find(folded_part)
        if start < 0:
            return set()
        end = start + len(folded_part)
        return {i for i, (a, b) in enumerate(u.places) if a >= start and b <= end}

    # -- completing and deciding ---------------------------------------------------------------------------
    def _complete(self, reading: Understanding, tagged: Tagged, u: Utterance) -> Understanding:
        """Optional slots a template left out but the message names ("hvad mangler vi i fasen vi er i?")."""
        spec = self.intents.get(reading.intent)
        if spec is None:
            return reading
        slots = dict(reading.slots)
        for slot in spec.slots:
            if slot in slots or slot in ("task", "person", "title", "numbers", "term", "term2", "date"):
                continue
            found = self._evidence(slot, tagged, u.typed, spec.name)
            if found is not None:
                slots[slot] = (int(found.value) if found.kind == "phase" else f"@{found.value}") if slot == "phase" \
                    else found.value
        defaulted = []
        if self._bare(u, tagged):  # "fortryd", "færdig": the last task; not when the message names something unknown
            for slot, value in spec.defaults.items():
                if slot not in slots:
                    slots[slot] = value
                    defaulted.append(slot)
        if spec.name == "assign" and "role" not in slots:
            slots["role"] = "performer"
        if defaulted:  # what the message did not say is asked about before anything changes
            return replace(reading, slots=slots, doubts=reading.doubts + tuple(f"{s} from context" for s in defaulted))
        return replace(reading, slots=slots)

    def _name_like(self, typed: str) -> bool:
        """Text that may be a name the bot does not know (a local task's title: "Informér MED-udvalget"), not
        just everyday words ("undo pls, wrong task"): a capital letter, or a word people rarely write."""
        return any(ch.isupper() for ch in typed) or any(not self.lexicon.common(w) for w in words(typed))

    def _bare(self, u: Utterance, tagged: Tagged) -> bool:
        """Every word of the message is one the examples know: nothing named that the bot failed to find."""
        named = {i for f in tagged.found for i in range(f.start, f.end)}
        return all(self.classifier.knows_word(tagged.words[i]) for i in u.body if i not in named)

    def _decide(self, reading: Understanding, u: Utterance, tagged: Tagged) -> Understanding:
        spec = self.intents.get(reading.intent)
        if spec is None or not spec.changes:
            return replace(reading, confirm=False)
        if u.question:
            body = u.body_words
            if body and self.words.who_words.at(body, 0) and "history" in self.intents:
                # "hvem har flyttet os til fase 2?", "who reopened X?": who made the change
                slots = {k: v for k, v in reading.slots.items() if k in self.intents["history"].slots}
                return replace(reading, intent="history", slots=slots, unresolved={}, confirm=False,
                               why=reading.why + "; a who-question: history")
            if spec.asked == "confirm":
                return replace(reading, confirm=True, why=reading.why + "; asked as a question: confirm")
            asked = self.intents[spec.asked]
            slots = {k: v for k, v in reading.slots.items() if k in asked.slots}
            unresolved = {k: v for k, v in reading.unresolved.items() if k in asked.slots}
            return replace(reading, intent=asked.name, slots=slots, unresolved=unresolved, confirm=False,
                           why=reading.why + f"; a question: {asked.name}")
        unsure = list(reading.doubts)
        if tagged.first("municipality") and "municipality" not in spec.slots:
            unsure.append("names a municipality")  # "Aarhus går live 1. marts": about someone else
        if u.hedged:
            unsure.append("hedged")
        if u.negated and not spec.negative:
            unsure.append("negated")
        cues = self.words.cues.get(spec.name)
        if reading.by_classifier and cues and not cues.find(tagged.words):
            unsure.append("no cue word")
        if unsure:
            return replace(reading, confirm=True, why=reading.why + "; confirm: " + ", ".join(unsure))
        return replace(reading, confirm=False)


def _lower_case_words(texts) -> Counter:
    """How often the examples write each word in lower case: a name ("Mette", "Lars") is not a word the bot
    knows, or it would never be taken for a person's name."""
    written: Counter = Counter(word for text in texts for word in _WORD.findall(text)
                               if word[0].islower() or word[0].isdigit())
    lower: Counter = Counter()
    for word, n in written.items():
        for part in words(word):
            lower[part] += n
    return lower


def _body_text(u: Utterance) -> str:
    """The folded text of the body (fillers cut out), punctuation inside kept for dates and titles."""
    if not u.body:
        return ""
    parts, run_start, previous = [], u.body[0], u.body[0]
    for index in itertools.chain(u.body[1:], [None]):
        if index is not None and index == previous + 1:
            previous = index
            continue
        parts.append(u.folded[u.places[run_start][0]:u.places[previous][1]])
        if index is not None:
            run_start = previous = index
    return " ".join(parts)
