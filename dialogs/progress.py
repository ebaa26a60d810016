"""Counts and the current phase, computed from content and one municipality's stored state."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from content import Content, Source, Task, Text
from content.schema import MILESTONE_ORDER, MilestoneName
from dialogs.store import MunicipalityState


@dataclass(frozen=True)
class PhaseProgress:
    number: int
    done: int
    total: int

    @property
    def complete(self) -> bool:
        return self.done == self.total


_LOCAL = Source(kind="local")


def local_task(entry: Mapping[str, Any]) -> Task:
    """A municipality's own task, typed in chat: one title for both languages, the municipality's own words."""
    title = Text(da=entry["title"], en=entry["title"])
    return Task(id=entry["id"], phase=entry["phase"], theme=entry["theme"], title=title, local=True, source=_LOCAL,
                details_source=_LOCAL)


def tasks_of(content: Content, state: MunicipalityState) -> list[Task]:
    """The project's tasks plus the municipality's local ones: everything that counts for it."""
    return [*content.tasks, *(local_task(t) for t in state.local_tasks)]


def tasks_in(content: Content, state: MunicipalityState, phase: int) -> list[Task]:
    return [t for t in tasks_of(content, state) if t.phase == phase]


def find_task(content: Content, state: MunicipalityState, task_id: str) -> Task | None:
    return content.task(task_id) or next((local_task(t) for t in state.local_tasks if t["id"] == task_id), None)


def is_done(state: MunicipalityState, task_id: str) -> bool:
    task = state.tasks.get(task_id)
    return bool(task and task.done)


def phase_progress(content: Content, state: MunicipalityState) -> tuple[PhaseProgress, ...]:
    """Done and total per phase. Most turns need it, often twice: kept with the (read-only) state."""
    key = ("phase_progress", content)
    progress: tuple[PhaseProgress, ...] | None = state.derived.get(key)
    if progress is None:
        local_phase = {t["id"]: t["phase"] for t in state.local_tasks}
        total = {p.number: content.phase_size(p.number) for p in content.phases}
        for phase in local_phase.values():
            if phase in total:
                total[phase] += 1
        # Over the tasks ever marked, not all tasks; a task no longer in the content or the local list
        # does not count.
        done = dict.fromkeys(total, 0)
        for task_id, task_state in state.tasks.items():
            if task_state.done:
                task = content.task(task_id)
                phase = task.phase if task else local_phase.get(task_id)
                if phase in done:
                    done[phase] += 1
        progress = state.derived[key] = tuple(PhaseProgress(n, done[n], total[n]) for n in total)
    return progress


def current_phase(content: Content, state: MunicipalityState) -> int:
    """The phase the municipality is in: 1 at registration, moved by the transition self-check."""
    return min(max(state.phase, 1), len(content.phases))


def open_tasks_by_theme(content: Content, state: MunicipalityState, phase: int) -> list[tuple[str, list[Task]]]:
    """Open tasks of a phase, grouped by theme in the model's theme order."""
    open_tasks = [t for t in tasks_in(content, state, phase) if not is_done(state, t.id)]
    groups = []
    for theme in content.themes:
        tasks = [t for t in open_tasks if t.theme == theme.id]
        if tasks:
            groups.append((theme.id, tasks))
    return groups


MILESTONES = MILESTONE_ORDER


@dataclass(frozen=True)
class Milestone:
    name: MilestoneName  # "idriftsaettelsesdato" | "go-live" (glossary term ids)
    date: date
    wave: str | None  # the wave id when the date is the wave's, None when the municipality set its own


def milestones_of(content: Content, state: MunicipalityState) -> dict[str, Milestone]:
    """The municipality's own dates, else its wave's."""
    wave = content.project.wave_of(state.code)
    out: dict[str, Milestone] = {}
    for name in MILESTONES:
        if name in state.milestones:
            out[name] = Milestone(name, state.milestones[name], None)
        elif wave and name in wave.milestones:
            out[name] = Milestone(name, wave.milestones[name], wave.id)
    return out


def due_date(content: Content, state: MunicipalityState, task: Task) -> date | None:
    """The task's deadline as a date, where its milestone is set (tasks.yaml's `due`: a draft unless the project's)."""
    if task.due is None:
        return None
    milestone = milestones_of(content, state).get(task.due.milestone)
    return milestone.date - timedelta(weeks=task.due.weeks_before) if milestone else None


def overdue_since(content: Content, state: MunicipalityState, task: Task) -> date | None:
    """A date by which the task was certainly due: its deadline, or, where its milestone is not set, the same
    weeks before a later milestone that is (idriftsættelsesdatoen comes before go-live, so "8 weeks before
    go-live" is never earlier than the real deadline). For counting what is overdue, never more than is."""
    exact = due_date(content, state, task)
    if exact is not None or task.due is None:
        return exact
    milestones = milestones_of(content, state)
    later = MILESTONE_ORDER[MILESTONE_ORDER.index(task.due.milestone) + 1:]
    bound = next((milestones[m] for m in later if m in milestones), None)
    return bound.date - timedelta(weeks=task.due.weeks_before) if bound else None
