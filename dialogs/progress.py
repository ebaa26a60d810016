"""Counts and the current phase, computed from content and one municipality's stored state."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from content import Content, Task, Text
from dialogs.store import MunicipalityState


@dataclass(frozen=True)
class PhaseProgress:
    number: int
    done: int
    total: int

    @property
    def complete(self) -> bool:
        return self.done == self.total


def local_task(entry: dict) -> Task:
    """A municipality's own task, typed in chat: one title for both languages."""
    title = Text(da=entry["title"], en=entry["title"])
    return Task(id=entry["id"], phase=entry["phase"], theme=entry["theme"], title=title, local=True)


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


def phase_progress(content: Content, state: MunicipalityState) -> list[PhaseProgress]:
    done, total = {p.number: 0 for p in content.phases}, {p.number: 0 for p in content.phases}
    for task in tasks_of(content, state):  # one pass, not one per phase: this runs on most turns
        if task.phase in total:
            total[task.phase] += 1
            done[task.phase] += is_done(state, task.id)
    return [PhaseProgress(p.number, done[p.number], total[p.number]) for p in content.phases]


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


MILESTONES = ("idriftsaettelsesdato", "go-live")


@dataclass(frozen=True)
class Milestone:
    name: str  # "idriftsaettelsesdato" | "go-live" (glossary term ids)
    date: date
    wave: str | None  # the wave id when the date is the wave's, None when the municipality set its own


def milestones_of(content: Content, state: MunicipalityState) -> dict[str, Milestone]:
    """The municipality's own dates, else its wave's."""
    wave = content.project.wave_of(state.code)
    out = {}
    for name in MILESTONES:
        if name in state.milestones:
            out[name] = Milestone(name, state.milestones[name], None)
        elif wave and name in wave.milestones:
            out[name] = Milestone(name, wave.milestones[name], wave.id)
    return out
