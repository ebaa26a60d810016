"""Typed shape of the content files. pydantic does the field checks; cross-references are checked in loader."""
from __future__ import annotations

from datetime import date, time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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
    source: Text


class Theme(Strict):
    id: str
    name: Text
    aliases: Aliases = Aliases()
    purpose: Text
    source: Text | None = None


class Task(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    phase: int = Field(ge=1, le=4)
    theme: str
    title: Text
    aliases: Aliases = Aliases()
    description: Text | None = None
    prerequisites: Text | None = None
    result: Text | None = None
    responsible: Text | None = None
    deadline_weeks_before_go_live: int | None = None
    local: bool = False  # added by one municipality in chat, not part of the project's task list


class Term(Strict):
    id: str
    term: Text
    synonyms: Aliases = Aliases()
    definition: Text
    status: Text | None = None
    source: Text
    related: list[str] = []


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


MilestoneName = Literal["idriftsaettelsesdato", "go-live"]


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
    # Which phase must be finished by each milestone: Forberedelse ends with the technical go-into-operation.
    phase_due: dict[MilestoneName, int] = {"idriftsaettelsesdato": 2, "go-live": 2}
    overdue_every_days: int = Field(default=7, ge=1)
    window: NudgeWindow = NudgeWindow()


class Project(Strict):
    """How one KOMBIT project operationalises the model (principles in the model's Del 2)."""

    name: Text
    exclude_tasks: list[str] = []
    add_tasks: list[Task] = []
    phase_durations_weeks: dict[int, int | None] = {}
    deviations: list[Deviation] = []
    waves: list[Wave] = []
    nudges: Nudges = Nudges()

    def wave_of(self, code: str) -> Wave | None:
        return next((w for w in self.waves if code in w.members), None)

    def wave(self, wave_id: str) -> Wave | None:
        return next((w for w in self.waves if w.id == wave_id), None)


class PhasesFile(Strict):
    phases: list[Phase] = Field(min_length=4, max_length=4)


class ThemesFile(Strict):
    themes: list[Theme] = Field(min_length=1)


class TasksFile(Strict):
    tasks: list[Task] = Field(min_length=1)


class GlossaryFile(Strict):
    terms: list[Term] = Field(min_length=1)


class AliasesFile(Strict):
    aliases: dict[str, list[str]] = {}


class ProjectFile(Strict):
    project: Project


class Content:
    """Everything validated and cross-checked; `tasks` is the project's effective task list."""

    def __init__(self, *, phases, themes, tasks, terms, municipalities, project, sentences):
        self.phases: list[Phase] = phases
        self.themes: list[Theme] = themes
        self.tasks: list[Task] = tasks
        self.terms: list[Term] = terms
        self.municipalities: list[Municipality] = municipalities
        self.project: Project = project
        self.sentences: dict[str, dict] = sentences
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

    def municipality(self, code: str) -> Municipality | None:
        return self._municipalities.get(code)

    def tasks_in(self, phase: int) -> list[Task]:
        return [t for t in self.tasks if t.phase == phase]

    def phase_size(self, phase: int) -> int:
        """How many of the project's tasks belong to the phase."""
        return self._phase_sizes.get(phase, 0)
