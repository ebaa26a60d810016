"""Every kind of change, declared once: what its event must carry (`check`), what it does to a municipality's
state (`apply`, a pure function on plain JSON), and whether and how history shows it.

The audit trail is the model: a municipality's state is `apply` folded over its events, in trail order. Both
stores (bot/tiny_store.py, bot/pg_store.py) call only `check` and `apply` from here, so a new kind of change
is one entry in `KINDS` below (and, if history shows it, its line `history.<action>` in each language's catalog,
checked at start-up by `missing_history_strings`).

A municipality's state as stored ("doc"): {code, tenant_id, phase, phase_at, milestones: {name: iso date},
tasks: {id: {done, by, at, conversation}}, gate, local_tasks: [{id, phase, theme, title}], assignments:
{task id: {role: actor}}}. `apply` never changes its argument: it returns a new dict, sharing what it kept.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from dialogs.store import Actor, AuditEvent, MunicipalityState, TaskState, frozen

if TYPE_CHECKING:
    from dialogs.context import Ctx

Doc = dict[str, Any]


class EventError(ValueError):
    """An event that does not carry what its kind needs: never written, never applied."""


def _need(event: AuditEvent, *fields: str) -> Mapping[str, Any]:
    details = event.details or {}
    missing = [f for f in fields if f not in details]
    if missing:
        raise EventError(f"{event.action} event without {', '.join(missing)} in its details")
    return details


def _need_task(event: AuditEvent) -> str:
    if not event.task_id:
        raise EventError(f"{event.action} event without a task id")
    return event.task_id


def _actor(actor: Actor) -> dict[str, str]:
    return {"id": actor.id, "name": actor.name}


# -- what each kind does to the state (pure) --------------------------------------------------------------
def _mark(doc: Doc, event: AuditEvent) -> Doc:
    task = {"done": event.action == "done", "by": _actor(event.by), "at": event.at, "conversation": event.conversation}
    return {**doc, "tasks": {**(doc.get("tasks") or {}), _need_task(event): task}}


def _register(doc: Doc, event: AuditEvent) -> Doc:
    # The first tenant to register a municipality owns it; a later registration of the same tenant changes nothing.
    return doc if doc.get("tenant_id") else {**doc, "tenant_id": event.tenant_id or None}


def _rebind(doc: Doc, event: AuditEvent) -> Doc:
    return {**doc, "tenant_id": event.tenant_id or None}  # an empty tenant: a mistaken registration released


def _unchanged(doc: Doc, event: AuditEvent) -> Doc:
    return doc


def _milestone(doc: Doc, event: AuditEvent) -> Doc:
    details = _need(event, "name", "date")
    return {**doc, "milestones": {**(doc.get("milestones") or {}), details["name"]: details["date"]}}


def _phase(doc: Doc, event: AuditEvent) -> Doc:
    return {**doc, "phase": _need(event, "from", "to")["to"], "gate": None, "phase_at": event.at}


def _assign(doc: Doc, event: AuditEvent) -> Doc:
    details, task = _need(event, "role", "person"), _need_task(event)
    assignments = dict(doc.get("assignments") or {})
    assignments[task] = {**assignments.get(task, {}), details["role"]: details["person"]}
    return {**doc, "assignments": assignments}


def _local_add(doc: Doc, event: AuditEvent) -> Doc:
    task = _need(event, "task")["task"]
    kept = [t for t in doc.get("local_tasks") or [] if t["id"] != task["id"]]
    return {**doc, "local_tasks": [*kept, task]}


def _local_remove(doc: Doc, event: AuditEvent) -> Doc:
    # Gone with everything about it: a task added again later under the same title starts afresh.
    task = _need_task(event)
    return {**doc,
            "local_tasks": [t for t in doc.get("local_tasks") or [] if t["id"] != task],
            "tasks": {k: v for k, v in (doc.get("tasks") or {}).items() if k != task},
            "assignments": {k: v for k, v in (doc.get("assignments") or {}).items() if k != task}}


def _gate_start(doc: Doc, event: AuditEvent) -> Doc:
    details = _need(event, "from", "to", "skipped_open", "awaiting_skip")
    return {**doc, "gate": {
        "from": details["from"], "to": details["to"], "answers": {}, "awaiting_skip": details["awaiting_skip"],
        "skipped_open": details["skipped_open"], "started_by": _actor(event.by), "at": event.at,
        "conversation": event.conversation}}


def _gate_step(change: Callable[[Mapping[str, Any]], Mapping[str, Any]]) -> Callable[[Doc, AuditEvent], Doc]:
    """A step of a self-check in progress; without one (moved on meanwhile) it changes nothing."""
    def apply(doc: Doc, event: AuditEvent) -> Doc:
        gate = doc.get("gate")
        return {**doc, "gate": {**gate, **change(event.details or {})}} if gate else doc
    return apply


_gate_answers = _gate_step(lambda d: {"answers": d["answers"]})
_gate_wait = _gate_step(lambda d: {"awaiting_skip": True, "skipped_open": d["skipped_open"]})
_gate_skip = _gate_step(lambda d: {"awaiting_skip": False, "skip_confirmed": True})


# -- what history says about it: the {detail} of its "history.<action>" line ---------------------------------
def _no_detail(ctx: Ctx, event: AuditEvent) -> str:
    return ""


def _milestone_detail(ctx: Ctx, event: AuditEvent) -> str:
    """"Go-live: 1. marts 2027"."""
    details = event.details or {}
    return f"{ctx.content.known_term(details['name']).term.get(ctx.lang)}: {ctx.date(date.fromisoformat(details['date']))}"


def _phases_detail(ctx: Ctx, event: AuditEvent) -> str:
    """"Fase 1: Opstart → Fase 2: Forberedelse", and the exceptions a move was made with."""
    details = event.details or {}
    text = " → ".join(ctx.t("phase.label", number=n, phase=ctx.content.phase(n).name.get(ctx.lang))
                      for n in (details["from"], details["to"]))
    count = details.get("exceptions", 0)
    return f"{text} {ctx.tn('history.exceptions', count)}" if count else text


def _answers_detail(ctx: Ctx, event: AuditEvent) -> str:
    """"✅ 1, 3 · ❌ 2": the criteria by number, as the checklist shows them."""
    answers = sorted((event.details or {})["answers"].items(), key=lambda item: int(item[0]))
    marks = [(mark, ", ".join(n for n, a in answers if bool(a.get("ok")) == ok)) for mark, ok in (("✅", True), ("❌", False))]
    return " · ".join(f"{mark} {numbers}" for mark, numbers in marks if numbers)


# -- the registry ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Kind:
    action: str
    apply: Callable[[Doc, AuditEvent], Doc]
    needs: tuple[str, ...] = ()  # keys its details must hold
    task: bool = False  # it is about one task (task_id required; history per task finds it)
    shown: bool = True  # history lists it ("history.<action>" in every catalog)
    detail: Callable[[Ctx, AuditEvent], str] = _no_detail  # the {detail} of its history line

    def check(self, event: AuditEvent) -> None:
        if self.task:
            _need_task(event)
        _need(event, *self.needs)


KINDS: Mapping[str, Kind] = MappingProxyType({kind.action: kind for kind in (
    Kind("done", _mark, task=True),
    Kind("reopen", _mark, task=True),
    Kind("assign", _assign, ("role", "person"), task=True),
    Kind("local_add", _local_add, ("task",)),  # its id is in the task it carries (older trails: only there)
    Kind("local_remove", _local_remove, task=True),
    Kind("milestone", _milestone, ("name", "date"), detail=_milestone_detail),
    Kind("gate_start", _gate_start, ("from", "to", "skipped_open", "awaiting_skip"), detail=_phases_detail),
    Kind("gate_answer", _gate_answers, ("answers",), detail=_answers_detail),
    Kind("gate_wait", _gate_wait, ("skipped_open",), shown=False),  # the bot's own question, not a person's act
    Kind("gate_skip", _gate_skip),
    Kind("phase", _phase, ("from", "to"), detail=_phases_detail),
    Kind("register", _register),
    Kind("rebind", _rebind),
    Kind("forget", _unchanged),  # GDPR erasure: the trail notes it; the store replaces the person everywhere
)})


def kind_of(event: AuditEvent) -> Kind:
    kind = KINDS.get(event.action)
    if kind is None:
        raise EventError(f"unknown kind of change: {event.action!r}")
    return kind


def check(event: AuditEvent) -> None:
    """Refuse (EventError) an event that could not be applied or replayed: checked before it is written."""
    kind_of(event).check(event)


def apply(doc: Doc, event: AuditEvent) -> Doc:
    return kind_of(event).apply(doc, event)


def missing_history_strings(has: Callable[[str], bool]) -> list[str]:
    """The catalog keys history needs and a catalog lacks (start-up refuses to run without them)."""
    return [f"history.{k.action}" for k in KINDS.values() if k.shown and not has(f"history.{k.action}")]


def shown_actions() -> list[str]:
    """The kinds history lists (a database store filters its index by them)."""
    return [k.action for k in KINDS.values() if k.shown]


def shown(event: AuditEvent) -> bool:
    kind = KINDS.get(event.action)
    return kind is not None and kind.shown


# -- state as the dialogs read it --------------------------------------------------------------------------
def _task_state(d: Mapping[str, Any]) -> TaskState:
    by = d.get("by") or {}
    return TaskState(done=bool(d["done"]), by=Actor(by.get("id", ""), by.get("name", "")), at=d["at"],
                     conversation=d.get("conversation", ""))


def state_of(doc: Mapping[str, Any] | None, code: str) -> MunicipalityState:
    """The read-only state a doc stands for (both stores build it the same way)."""
    doc = doc or {}
    return MunicipalityState(
        code=code,
        tenant_id=doc.get("tenant_id"),
        phase=doc.get("phase") or 1,
        milestones=MappingProxyType({k: date.fromisoformat(v) for k, v in (doc.get("milestones") or {}).items()}),
        tasks=MappingProxyType({tid: _task_state(s) for tid, s in (doc.get("tasks") or {}).items()}),
        gate=frozen(doc.get("gate")),
        local_tasks=frozen(doc.get("local_tasks") or []),
        assignments=frozen(doc.get("assignments") or {}),
    )


def empty(code: str) -> Doc:
    return {"code": code, "tasks": {}}
