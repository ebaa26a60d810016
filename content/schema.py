"""Typed shape of the content files. pydantic does the field checks; cross-references are checked in loader."""
from __future__ import annotations

from datetime import date, time
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

Lang = Literal["da", "en"]


class Strict(BaseModel):
    # Unknown keys are typos in hand-edited YAML: reject them so the consultant hears about it.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(Strict):
    """One string in both languages. Danish is the model's own wording; English is a translation."""

    da: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def get(self, lang: str) -> str:
        return self.da if lang == "da" else self.en


# Whose words a piece of content is: the model's (translated by us in English), the KOMBIT project's own
# material, our draft, or a municipality's own (a task added in chat). Every reply that quotes content says which.
SourceKind = Literal["model", "project", "draft", "local"]


class Source(Strict):
    kind: SourceKind
    part: Text | None = None  # where in the model or the project's material ("faseoversigten")

    @model_validator(mode="after")
    def _model_names_its_part(self) -> Source:
        if self.kind == "model" and self.part is None:
            raise ValueError("a source in the model must name the part of the model (part: {da, en})")
        return self


MilestoneName = Literal["idriftsaettelsesdato", "go-live"]
MILESTONE_ORDER: tuple[MilestoneName, ...] = ("idriftsaettelsesdato", "go-live")  # the model's order in time


class Due(Strict):
    """A task's deadline, counted from a milestone: weeks before it (negative: after it)."""

    milestone: MilestoneName
    weeks_before: int


class Aliases(Strict):
    da: list[str] = []
    en: list[str] = []

    def all(self) -> list[str]:
        return [*self.da, *self.en]


class Phase(Strict):
    number: int = Field(ge=1, le=4)
    id: str
    name: Text
    aliases: Aliases = Aliases()
    focus: Text
    effect: Text
    success_criteria: list[Text] = Field(min_length=1)
    actors: list[Text] = Field(min_length=1)
    source: Source


class Theme(Strict):
    id: str
    name: Text
    aliases: Aliases = Aliases()
    purpose: Text
    source: Source


class Task(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    phase: int = Field(ge=1, le=4)
    theme: str
    title: Text
    aliases: Aliases = Aliases()
    description: Text | None = None
    prerequisites: Text | None = None
    result: Text | None = None
    responsible: Text | None = None  # who typically does it: a suggestion, not an assignment ("ansvarlig")
    due: Due | None = None
    # Where the title and theme come from, and where the rest (description … due) comes from. Left out in a
    # file, the file's `sources` apply; the loader fills both in, so every task in Content has them.
    source: Source | None = None
    details_source: Source | None = None
    local: bool = False  # added by one municipality in chat, not part of the project's task list


ModelPart = Literal["maalgruppe", "laesevejledning", "sammenhaeng", "maal-og-effekt", "faser", "temaer", "centrale-begreber", "praksis"]


class UsedIn(Strict):
    """Where the model uses a word it does not define: task titles, theme rows, phases, other parts."""

    tasks: list[str] = []
    themes: list[str] = []
    phases: list[int] = []
    parts: list[ModelPart] = []


class Term(Strict):
    """A glossary entry: a term the model defines (its definition and where), or a word the model only uses
    (`used_in`), optionally with our own explanation, which is never shown as the model's."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    term: Text
    synonyms: Aliases = Aliases()
    definition: Text | None = None  # the model's own sentences
    status: Text | None = None  # set only for the model's approved central terms ("Godkendt april 2018")
    source: Source | None = None  # where the definition comes from
    used_in: UsedIn | None = None
    explanation: Text | None = None  # ours: shown as a draft, not the model's text
    related: list[str] = []

    @model_validator(mode="after")
    def _defined_or_used(self) -> Term:
        if (self.definition is None) == (self.used_in is None):
            raise ValueError("a term has either a definition from the model (with its source) or used_in, not both")
        if self.definition is not None and self.source is None:
            raise ValueError("a definition needs its source")
        return self


class Municipality(Strict):
    code: str = Field(pattern=r"^\d{4}$")
    name: str
    region: str
    aliases: list[str] = []


class Deviation(Strict):
    what: str
    why: str
    approved_by: str
    approved_on: str | None = None


class Wave(Strict):
    """A bølge: municipalities that share milestone dates (a member's own dates win)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: Text
    milestones: dict[MilestoneName, date] = {}
    members: list[str] = []  # municipality codes


class NudgeWindow(Strict):
    """When proactive messages may go out (the model's users are at work on weekdays)."""

    weekdays: list[int] = [0, 1, 2, 3, 4]  # Monday = 0
    start: time = time(8, 0)
    end: time = time(16, 0)
    timezone: str = "Europe/Copenhagen"


class Nudges(Strict):
    days_before: list[int] = Field(default=[30, 14, 3], min_length=1)
    overdue_every_days: int = Field(default=7, ge=1)
    window: NudgeWindow = NudgeWindow()


class Project(Strict):
    """How one KOMBIT project operationalises the model (principles in the model's Del 2)."""

    name: Text
    source: Source  # a KOMBIT project's own operationalisation ("project"), or this bot's default ("draft")
    exclude_tasks: list[str] = []
    add_tasks: list[Task] = []
    phase_durations_weeks: dict[int, int | None] = {}
    # The one deadline rule: which phase must be finished by each milestone. The nudges remind by it, and
    # start-up refuses a task whose own deadline falls later than its phase's.
    phase_due: dict[MilestoneName, int] = {"idriftsaettelsesdato": 2, "go-live": 2}
    deviations: list[Deviation] = []
    waves: list[Wave] = []
    nudges: Nudges = Nudges()

    def wave_of(self, code: str) -> Wave | None:
        return next((w for w in self.waves if code in w.members), None)

    def wave(self, wave_id: str) -> Wave | None:
        return next((w for w in self.waves if w.id == wave_id), None)

    def known_wave(self, wave_id: str) -> Wave:
        """A wave the caller has from the content itself (a name index's match)."""
        return _known({w.id: w for w in self.waves}, wave_id, "wave")


class Role(Strict):
    """Who does what, as the model says it: the municipality, KOMBIT, the supplier."""

    who: Text
    does: Text
    source: Source


class ModelInfo(Strict):
    """The model itself: what it is, why, for whom, who does what (content/data/model.yaml)."""

    name: Text
    what: Text
    why: Text
    audience: Text
    source: Source
    roles: list[Role] = Field(min_length=1)
    parts: dict[ModelPart, Text]  # the model's parts by name, for "the model uses the word in …"


class ModelFile(Strict):
    model: ModelInfo


class PhasesFile(Strict):
    overview_source: Source  # the model's table of the four phases side by side
    phases: list[Phase] = Field(min_length=4, max_length=4)


class ThemesFile(Strict):
    overview_source: Source
    themes: list[Theme] = Field(min_length=1)


class TaskSources(Strict):
    title: Source  # where the tasks' titles and themes come from
    details: Source  # where their description, prerequisites, result, responsible and due come from


class TasksFile(Strict):
    sources: TaskSources
    tasks: list[Task] = Field(min_length=1)


class GlossaryFile(Strict):
    terms: list[Term] = Field(min_length=1)


class ModelWordsFile(Strict):
    words: list[Term] = []


class AliasesFile(Strict):
    aliases: dict[str, list[str]] = {}


class ProjectFile(Strict):
    project: Project


# -- Language: the intent registry, and per language its words, templates and examples ------------------------
SlotName = Literal["task", "phase", "aspect", "theme", "term", "term2", "municipality", "person", "role", "milestone",
                   "date", "language", "wave", "numbers", "title", "sort", "period"]


HelpSection = Literal["progress", "tasks", "model", "conversation", "consultant"]  # in the order "hjælp" shows them


class IntentSpec(Strict):
    """One intent (content/intents.yaml): who answers it, what it takes, whether it changes data."""

    name: str = ""  # filled in from the mapping's key
    handler: str = Field(pattern=r"^[a-z_]+\.[a-z_]+$")
    changes: bool = False
    negative: bool = False  # says something is not so ("X er ikke færdig alligevel"): a negation is its own
    asked: str | None = None  # a changing intent asked as a question: this read-only intent, or "confirm"
    slots: dict[SlotName, Literal["required", "optional"]] = {}
    defaults: dict[SlotName, Any] = {}  # a slot the message leaves out: "fortryd" undoes "@ref", the last task
    free_text: list[SlotName] = []  # slots that may be text the bot does not know (a local task's title)
    help: HelpSection | None = None  # listed by "hjælp" under this heading
    consultant: bool = False

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(name for name, need in self.slots.items() if need == "required")


class IntentsFile(Strict):
    intents: dict[str, IntentSpec] = Field(min_length=1)


Phrases = list[str]


class PhaseReferences(Strict):
    current: Phrases
    next: Phrases
    previous: Phrases


class Roles(Strict):
    responsible: Phrases
    performer: Phrases


class Directions(Strict):
    to: Phrases
    back: Phrases
    on: Phrases


class SmallTalk(Strict):
    thanks: Phrases
    bye: Phrases
    greeting: Phrases
    praise: Phrases
    ack: Phrases


class WordsFile(Strict):
    """A language's words the understanding relies on (content/sentences/<lang>/words.yaml)."""

    language: Lang
    greetings: Phrases
    requests: Phrases
    fillers: Phrases
    leading_fillers: Phrases
    trailing_fillers: Phrases
    question_words: Phrases
    question_verbs: Phrases
    hedges: Phrases
    negations: Phrases
    task_references: Phrases
    phase_references: PhaseReferences
    phase_compounds: Phrases
    me: Phrases
    directions: Directions
    model_names: Phrases
    model_parts: dict[Literal["phases", "themes"], Phrases]
    ordinals: dict[int, Phrases] = {}
    number_words: Phrases
    all_words: Phrases
    conjunctions: Phrases
    title_markers: Phrases
    roles: Roles
    smalltalk: SmallTalk
    yes: Phrases
    no: Phrases
    confirming: Phrases  # small talk that is a yes right after the bot asked ("ok", 👍); "aha", "haha" are not
    stopwords: Phrases
    possessives: Phrases
    who_words: Phrases
    name_before: Phrases
    name_after: Phrases
    defining: Phrases
    cues: dict[str, Phrases]
    anchors: dict[str, Phrases] = {}
    milestones: dict[MilestoneName, Phrases]
    aspects: dict[Literal["focus", "effect", "criteria", "actors"], Phrases]
    languages: dict[Lang, Phrases]
    sort: dict[Literal["behind", "golive"], Phrases]
    periods: dict[Literal["today", "yesterday", "week"], Phrases]


class Example(Strict):
    text: str = Field(min_length=1)
    slots: dict[SlotName, Any] = {}


class IntentExamples(Strict):
    """What an intent must understand, and (for a changing intent) what must not trigger it."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    examples: list[str | Example] = Field(min_length=3)
    not_: list[str] = Field(default=[], alias="not")

    def all(self) -> list[Example]:
        return [e if isinstance(e, Example) else Example(text=e) for e in self.examples]


class ExamplesFile(Strict):
    language: Lang
    intents: dict[str, IntentExamples]


class TrainingFile(Strict):
    """More sentences per intent for the classifier to learn from, not each a test (training.yaml)."""

    language: Lang
    intents: dict[str, list[str]]


class Content:
    """Everything validated and cross-checked; `tasks` is the project's effective task list."""

    def __init__(self, *, phases: list[Phase], themes: list[Theme], tasks: list[Task], terms: list[Term],
                 municipalities: list[Municipality], project: Project, sentences: dict[str, dict[str, Any]],
                 model: ModelInfo, intents: dict[str, IntentSpec] | None = None,
                 words: dict[str, WordsFile] | None = None, examples: dict[str, ExamplesFile] | None = None,
                 training: dict[str, TrainingFile] | None = None, phases_source: Source | None = None,
                 themes_source: Source | None = None, excluded_tasks: list[Task] | None = None) -> None:
        self.phases = phases
        self.themes = themes
        self.tasks = tasks
        self.terms = terms
        self.municipalities = municipalities
        self.project = project
        self.sentences = sentences  # language -> hassil templates document
        self.intents = intents or {}
        self.words = words or {}
        self.examples = examples or {}
        self.model = model
        self.training = training or {}
        self.excluded_tasks = excluded_tasks or []  # the model's examples this project left out
        self.phases_source = phases_source  # the model's phase overview table
        self.themes_source = themes_source
        self._themes = {t.id: t for t in themes}
        self._tasks = {t.id: t for t in tasks}
        self._terms = {t.id: t for t in terms}
        self._municipalities = {m.code: m for m in municipalities}
        self._phase_sizes = {p.number: sum(t.phase == p.number for t in tasks) for p in phases}

    def phase(self, number: int) -> Phase:
        return self.phases[number - 1]

    def theme(self, theme_id: str) -> Theme:
        return self._themes[theme_id]

    def task(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def term(self, term_id: str) -> Term | None:
        return self._terms.get(term_id)

    def known_term(self, term_id: str) -> Term:
        """A term the caller has from the content itself (a milestone's name, a name index's match, `related`)."""
        return _known(self._terms, term_id, "term")

    def municipality(self, code: str) -> Municipality | None:
        return self._municipalities.get(code)

    def known_municipality(self, code: str) -> Municipality:
        """A municipality the caller has from the content itself (a registration, a name index's match)."""
        return _known(self._municipalities, code, "municipality")

    def tasks_in(self, phase: int) -> list[Task]:
        return [t for t in self.tasks if t.phase == phase]

    def phase_size(self, phase: int) -> int:
        """How many of the project's tasks belong to the phase."""
        return self._phase_sizes.get(phase, 0)


_Item = TypeVar("_Item")


def _known(items: dict[str, _Item], key: str, kind: str) -> _Item:
    """The item a caller is sure of: one that is missing is a bug, reported as which one."""
    try:
        return items[key]
    except KeyError:
        raise LookupError(f"no {kind} '{key}' in the content") from None
