"""Utterance -> intent + slots, and whether the bot may act on it without asking.

1. Prepare (utterance.py): the words; greetings, polite openings and fillers set aside; the kind of sentence.
2. Short answers said alone: "ja", "nej", "tak", "god weekend".
3. The message in the shape of one of the examples (examples.yaml), names as their kind: read as it.
4. Templates (template_reader.py, hassil) for precision: a command in a known shape, its slots looked up.
5. A message that is only a name: a phase, a term, a theme, a municipality.
6. Otherwise the classifier (classifier.py), trained on the examples and training sentences, over what the
   message names (entities.py): the likeliest intent whose required slots the message gives (slots.py).
7. Completed and made safe (decide.py): a question never changes data; an unsure change is asked about.

Every decision is explained in `Understanding.why` for the log.
"""
from __future__ import annotations

import functools
import re
import weakref
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from content import Content
from content.schema import IntentSpec
from dialogs.text import MAX_UTTERANCE, words
from dialogs.understanding.classifier import IntentClassifier
from dialogs.understanding.decide import Decider
from dialogs.understanding.entities import Tagged, Tagger
from dialogs.understanding.features import features
from dialogs.understanding.features import shape as shape_of
from dialogs.understanding.language import LanguageGuess
from dialogs.understanding.lexicon import Lexicon
from dialogs.understanding.names import Lookup, NameIndex, content_names
from dialogs.understanding.reading import FREE_TEXT_SLOTS, LOOKUP_SLOTS, TemplateParse, Understanding, body_text
from dialogs.understanding.slots import SlotFiller
from dialogs.understanding.template_reader import TemplateReader, template_words
from dialogs.understanding.utterance import Utterance, prepare
from dialogs.understanding.words import Words

_SURE = 0.85  # below this a classifier reading is "not sure"; a template's shape needs it to overrule the classifier
_FLOOR = 0.3  # below this the classifier's best guess is no answer: the message is not understood
_READINGS = 8  # how many of the classifier's likeliest intents are weighed further
_CLOSE_TERM = 80.0  # rapidfuzz WRatio from which a glossary term is offered as "did you mean"
_SHAPE = 4.0  # how much likelier an intent is when one of its templates has the message's shape (an unknown name in it)
_NAME_WORDS = 5  # a message this long or shorter may be only a name ("Ringkøbing-Skjern Kommune")
_WORD = re.compile(r"\w+")

_BUILT: weakref.WeakKeyDictionary[Content, Understander] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Trained:
    """What training derives from the sentences, as plain strings: the words the classifier weighs, each
    sentence's features with its intent, and the examples' shapes. A store of it (bot/understanding_cache.py,
    speed only) spares a start-up the tagging of every sentence; built afresh it is the same."""

    known: frozenset[str]
    samples: tuple[tuple[tuple[str, ...], str], ...]
    examples: dict[str, str]
    conflicts: dict[str, frozenset[str]]


class Understander:
    @classmethod
    def of(cls, content: Content, trained: Trained | None = None) -> Understander:
        """The understander for this content, trained once: understanding is pure, so servers sharing one
        validated content (the test suite's, or a reload of the same files) share it too."""
        built = _BUILT.get(content)
        if built is None:
            built = _BUILT[content] = cls(content, trained)
        return built

    def __init__(self, content: Content, trained: Trained | None = None):
        self.intents: dict[str, IntentSpec] = content.intents
        self.words = Words.of(content)
        self.lexicon = Lexicon()
        names = content_names(content, self.lexicon)
        # Each kind's names, looked up one at a time (a template's slot, a button's data, suggestions).
        # A word outside the model gets "did you mean" only with a term that is close ("hyperkær": Hyper-care), not
        # the three least unlike ("kaffemaskine": Tema, As-is, Fase).
        self.municipalities, self.phases, self.themes, self.terms, self.tasks, self.waves = (
            NameIndex(names[kind], suggest_from=_CLOSE_TERM if kind == "term" else 0.0, by_part=kind != "term")
            for kind in ("municipality", "phase", "theme", "term", "task", "wave"))
        indexes = {"municipality": self.municipalities, "phase": self.phases, "theme": self.themes,
                   "term": self.terms, "term2": self.terms, "task": self.tasks, "wave": self.waves}
        # A word of the sentences is a word the bot knows (never "corrected") if people commonly write it or it
        # comes up more than once: a one-off is likely a typo in the examples themselves ("stauts").
        written = _lower_case_words(text for _, text, _ in _sentences(content))
        known = template_words(content) | {w for w, n in written.items() if n >= 2 or self.lexicon.common(w)}
        used_only = frozenset(t.id for t in content.terms if t.used_in is not None)
        self.tagger = Tagger(names, self.words, known, self.lexicon, used_only)
        self.language = LanguageGuess(self.lexicon)
        self.templates = TemplateReader(content, self.words, indexes, self.tagger.correct)
        self.slots = SlotFiller(self.intents, self.words, self.lexicon, self.templates)
        self.trained = trained or self._train(content)
        self._known = self.trained.known
        self.classifier = IntentClassifier(self.trained.samples)
        self.decider = Decider(self.intents, self.words, self.slots, self.classifier.knows_word)
        self.examples = self.trained.examples
        self.conflicts = {shape: set(intents) for shape, intents in self.trained.conflicts.items()}
        self._cached = functools.lru_cache(maxsize=4096)(self._understand)

    def _train(self, content: Content) -> Trained:
        # Words seen once in all the sentences count as unknown in training, as unseen words do in use, so
        # the classifier learns what a message of words it does not know tends to be (out of scope, or a title).
        read = [(intent, example, u, self.tagger.tag(u))
                for intent, text, example in _sentences(content) for u in (prepare(text, self.words),)]
        counts = Counter(w for _, _, u, tagged in read for w in {tagged.words[i] for i in u.body})
        known = frozenset(w for w, n in counts.items() if n >= 2)
        samples = tuple((tuple(features(u, tagged, known)), intent) for intent, _, u, tagged in read)
        examples, conflicts = self._remember((intent, u, tagged) for intent, example, u, tagged in read if example)
        return Trained(known, samples, examples, {shape: frozenset(i) for shape, i in conflicts.items()})

    def _remember(self, examples: Iterable[tuple[str, Utterance, Tagged]]) -> tuple[dict[str, str], dict[str, set[str]]]:
        """Each example's shape (features.shape) -> its intent: an example is understood as written, with any
        name of the same kind in it. Two examples of different intents with one shape are a conflict in the
        examples (a test names them), and that shape is left to the classifier."""
        seen: dict[str, set[str]] = defaultdict(set)
        for intent, u, tagged in examples:
            if self._short_answer(u) is None:  # "ja", "tak": answered before any shape is looked at
                seen[shape_of(u, tagged)].add(intent)
        remembered = {key: next(iter(intents)) for key, intents in seen.items() if len(intents) == 1}
        return remembered, {key: intents for key, intents in seen.items() if len(intents) > 1}

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
                slot not in reading.slots and (need == "required" or slot in FREE_TEXT_SLOTS)
                for slot, need in self.intents[reading.intent].slots.items()):
            # The templates: what most messages need, and what an example's reading lacks (an unknown name)
            resolved, partial = self.templates.read(utterance, allowed)
            reading = (self._by_example(utterance, tagged, text, allowed, partial) if reading else None) or \
                resolved or self._bare_name(utterance, tagged, consultant) or \
                self._by_classifier(utterance, tagged, text, allowed, partial)
        reading = self.decider.complete(reading, tagged, utterance)
        reading = self.decider.decide(reading, utterance, tagged)
        return replace(reading, text=utterance.typed, language=language)

    def _short_answer(self, u: Utterance) -> Understanding | None:
        """"ja", "nej", an emoji, or nothing but small talk ("nice, thanks", "tak og god weekend")."""
        if not u.tokens:
            for intent, phrases in (("yes", self.words.yes), ("no", self.words.no)):
                if u.symbols and any(symbol in u.symbols for symbol in phrases.symbols):
                    return Understanding(intent, why="symbol")
            for kind, phrases in self.words.smalltalk.items():
                if u.symbols and any(symbol in u.symbols for symbol in phrases.symbols):
                    return Understanding("smalltalk", {"kind": kind}, why="symbol")
            return Understanding("unknown", why="no words")
        if self.words.yes.whole(u.tokens) or self.words.no.whole(u.tokens):
            if u.question:  # "ja?": a yes asked as a question answers nothing
                return Understanding("gate_check", why="yes/no word asked")
            return Understanding("yes" if self.words.yes.whole(u.tokens) else "no", why="yes/no word")
        kinds = []
        at = 0
        while at < len(u.tokens):
            best = max(((phrases.at(u.tokens, at), kind) for kind, phrases in self.words.smalltalk.items()),
                       key=lambda pair: pair[0])
            if best[0]:
                kinds.append(best[1])
                at += best[0]
            elif kinds and self.words.conjunctions.at(u.tokens, at):
                at += self.words.conjunctions.at(u.tokens, at)
            else:
                return None
        return Understanding("smalltalk", {"kind": kinds[0]}, why="small talk") if kinds else None

    def _by_example(self, u: Utterance, tagged: Tagged, raw_text: str, allowed: set[str],
                    partial: list[TemplateParse]) -> Understanding | None:
        """A message in the shape of one of the examples (any names of the same kinds in it) is read as that
        example is: the examples are what the bot must understand, as precisely as a template."""
        form = shape_of(u, tagged)
        remembered = self.examples.get(form)
        if remembered not in allowed:
            return None
        slots, unresolved, guessed = self.slots.fill(self.intents[remembered], tagged, u, raw_text, partial)
        return Understanding(remembered, slots, unresolved, why=f"an example's shape «{form}»",
                             doubts=("a name read from its words",) if guessed else ())

    def _bare_name(self, u: Utterance, tagged: Tagged, consultant: bool) -> Understanding | None:
        """A message that is only a name asks about it: a phase ("fase 2"), a term ("go-live?"), a theme, or a
        municipality (to register, asked about first; a consultant asks for its status). "faserne?" and
        "temaer?" ask for the overview. Names as written only: a near name alone is too little to go on."""
        text = body_text(u)
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
            for attempt in self.templates.name_attempts(text):
                value, lookup = self.templates.resolve(slot, attempt, suggest=False, exact=True)
                if value is not None and lookup.exact and not (isinstance(value, str) and value.startswith("@")):
                    return Understanding(intent, {slot: value}, why=f"only a name ({slot})", doubts=("only a name",))
        return None

    def _by_classifier(self, u: Utterance, tagged: Tagged, raw_text: str, allowed: set[str],
                       partial: list[TemplateParse]) -> Understanding:
        seen = features(u, tagged, self._known)
        named = tagged.named
        plain = [tagged.words[i] for i in u.body if i not in named]
        if plain and not named and all(w not in self._known for w in plain):
            return Understanding("unknown", why="no word the examples know")  # "asdf", "qwerty"
        if self.classifier.known(seen) == 0:
            return Understanding("unknown", why="nothing known")
        # The likeliest readings (the rest weigh nothing), as (intent, probability).
        everything = [(r.intent, r.probability) for r in self.classifier.rank(seen)[:_READINGS]
                      if self.slots.anchored(r.intent, tagged)]
        ranked = [(i, p) for i, p in everything if i in allowed]
        if everything and everything[0][0] not in allowed and (not ranked or ranked[0][1] < _FLOOR):
            ranked = everything  # a consultant's command from someone else: answered with why not
        if not ranked:
            return Understanding("unknown", why="nothing known")
        # A change needs what it changes: one the message does not name is no reading ("kan du minde mig om
        # go-live datoen" is no date to set). A template that has the message's shape but a name it does not
        # know ("tilmeld Atlantis") makes its intent likelier: the name is new, the command is not.
        missing = functools.partial(self.slots.missing, tagged=tagged, raw_text=raw_text, partial=partial)
        shaped = {p.intent for p in partial}
        possible = [(i, p * (_SHAPE if i in shaped else 1.0)) for i, p in ranked
                    if not (self.intents[i].changes and missing(i))] or ranked
        total = sum(p for _, p in possible) or 1.0
        ranked = sorted(((i, p / total) for i, p in possible), key=lambda r: -r[1])
        chosen = ranked[0]
        if missing(chosen[0]):  # a close second the message fills in wins
            chosen = next((other for other in ranked[1:3] if other[1] * 2 >= ranked[0][1] and not missing(other[0])),
                          chosen)
        intent, probability = chosen
        runner_up = next((i for i, _ in ranked if i != intent), None)
        why = f"classifier {intent} {probability:.2f} over {runner_up} " \
              f"({', '.join(self.classifier.why(seen, intent, runner_up))})"
        shape = self.slots.shape(partial, tagged, allowed, u)
        if shape is not None and intent != shape and (intent == "unknown" or probability < _SURE):
            # A command's shape with a name the bot does not know, which the classifier cannot judge: the shape
            intent, probability = shape, 1.0
            why = f"template shape {shape}, a name not known ({why})"

        def offers(first: str | None = None) -> tuple[tuple[str, dict[str, Any]], ...]:  # the likeliest readings, to offer
            intents = [first] if first else []
            intents += [i for i, p in ranked[:4] if i not in (intent, "unknown") and p >= 0.05]
            return tuple((i, self.slots.fill(self.intents[i], tagged, u, raw_text, partial)[0]) for i in intents[:3])

        if probability < _FLOOR or intent == "unknown" or not self._covered(u, tagged):
            first = intent if intent != "unknown" and probability >= 0.05 else None
            return Understanding("unknown", why=why, alternatives=offers(first))
        slots, unresolved, guessed = self.slots.fill(self.intents[intent], tagged, u, raw_text, partial)
        doubts = (("a name read from its words",) if guessed else ()) + (("not sure",) if probability < _SURE else ())
        if intent == "define" and not self._asks_a_definition(slots, unresolved, tagged):
            return Understanding("unknown", why=why + "; not a definition question", alternatives=offers())
        # A command's template with a name the bot does not know yet ("fortryd Informér MED-udvalget", a local
        # task) is read as that template: the dialog finds the name or says it does not know it.
        by_shape = shape is not None and intent == shape and probability >= _SURE and \
            any(slot in unresolved for slot in LOOKUP_SLOTS)  # a name really not known: a found one is the classifier's
        why += "; a template's shape with a new name" if by_shape else ""
        return Understanding(intent, slots, unresolved, why=why, doubts=doubts, by_classifier=not by_shape)

    def _asks_a_definition(self, slots: dict[str, Any], unresolved: dict[str, Lookup], tagged: Tagged) -> bool:
        """"hvad er X?" with an X outside the model is a definition question only when it says so ("hvad
        betyder …", "hvad er en …") or X is something of the model's (a task): not "hvad er vejret?"."""
        if "term" not in slots:
            return False
        if "term" not in unresolved:
            return True
        guess = tagged.task_guess
        names_content = any(tagged.first(kind) for kind in ("task", "theme", "phase")) or (
            guess is not None and bool(guess.id or guess.candidates))
        return names_content or bool(self.words.defining.find(tagged.words))

    def _covered(self, u: Utterance, tagged: Tagged) -> bool:
        """Whether the examples knew enough of the message's own words to judge it: a long message of words
        never seen ("hvem vinder superligaen i år") is not understood, whatever its best guess."""
        named = tagged.named - tagged.used_only  # a word the model only uses is a word like others here
        plain = [tagged.words[i] for i in u.body if i not in named]
        if len(plain) < 3:
            return True
        known = sum(1 for w in plain if self.classifier.knows_word(w))
        return known * 2 >= len(plain)


def _sentences(content: Content) -> Iterator[tuple[str, str, bool]]:
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


def _lower_case_words(texts: Iterable[str]) -> Counter[str]:
    """How often the examples write each word in lower case: a name ("Mette", "Lars") is not a word the bot
    knows, or it would never be taken for a person's name."""
    written: Counter[str] = Counter(word for text in texts for word in _WORD.findall(text)
                               if word[0].islower() or word[0].isdigit())
    lower: Counter[str] = Counter()
    for word, n in written.items():
        for part in words(word):
            lower[part] += n
    return lower
