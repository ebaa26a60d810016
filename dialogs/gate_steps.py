"""The transition self-check as a state machine: its stages, and transitions that return the events that make
them (dialogs/events.py applies them). Pure: no store, no wording; dialogs/gate.py decides and answers.

    no self-check ──start──▶ checking ──answer──▶ checking ──complete──▶ no self-check (next phase)
                      │          ▲  │                                  ▲
                      └─▶ awaiting_skip ◀──wait (open tasks remain)     │
                               └──confirm_skip──▶ checking              │
    any stage ──back (a phase moved back to)─────────────────────────────┘
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from dialogs.store import Actor, AuditEvent, MunicipalityState

Gate = Mapping[str, Any]  # as dialogs/events.py builds it: {from, to, answers: {"1": {ok, note}}, awaiting_skip, …}


class Stage(Enum):
    NONE = "none"
    CHECKING = "checking"
    AWAITING_SKIP = "awaiting_skip"  # open tasks remain in the phase: moving on past them needs a "ja"


class GateError(ValueError):
    """A transition the current stage does not allow (a bug in the caller, never a user's mistake)."""


@dataclass(frozen=True)
class Origin:
    """Who makes a step, when, where: every event of a turn carries the same."""

    by: Actor
    at: str
    conversation: str


def stage(state: MunicipalityState) -> Stage:
    if not state.gate:
        return Stage.NONE
    return Stage.AWAITING_SKIP if state.gate.get("awaiting_skip") else Stage.CHECKING


def _event(state: MunicipalityState, origin: Origin, action: str, details: dict[str, Any]) -> AuditEvent:
    return AuditEvent(state.code, action, None, origin.by, origin.at, origin.conversation, details=details)


def _require(state: MunicipalityState, *allowed: Stage) -> Gate:
    now = stage(state)
    if now not in allowed:
        raise GateError(f"{state.code}: the self-check is {now.value}, not {' or '.join(a.value for a in allowed)}")
    return state.gate or {}


def start(state: MunicipalityState, origin: Origin, source: int, open_tasks: int) -> AuditEvent:
    """Begin the self-check of `source` -> `source` + 1; with open tasks it first asks to skip past them."""
    _require(state, Stage.NONE)
    return _event(state, origin, "gate_start", {"from": source, "to": source + 1, "skipped_open": open_tasks,
                                                "awaiting_skip": open_tasks > 0})


def answer(state: MunicipalityState, origin: Origin, answers: Mapping[str, Mapping[str, Any]]) -> AuditEvent:
    """Record answers (criterion number -> {ok, note}), merged into those given before."""
    gate = _require(state, Stage.CHECKING)
    merged = {**{k: dict(v) for k, v in gate["answers"].items()}, **{k: dict(v) for k, v in answers.items()}}
    return _event(state, origin, "gate_answer", {"answers": merged})


def wait(state: MunicipalityState, origin: Origin, open_tasks: int) -> AuditEvent:
    """All criteria answered, but tasks of the phase were reopened meanwhile: ask about them first."""
    _require(state, Stage.CHECKING)
    return _event(state, origin, "gate_wait", {"skipped_open": open_tasks})


def confirm_skip(state: MunicipalityState, origin: Origin) -> AuditEvent:
    _require(state, Stage.AWAITING_SKIP)
    return _event(state, origin, "gate_skip", {})


def complete(state: MunicipalityState, origin: Origin, gate: Gate, criteria: list[str], open_tasks: int) -> AuditEvent:
    """Move on: the phase event carries every criterion (in the model's words), its answer, and the gaps."""
    _require(state, Stage.CHECKING)
    answers = [{"criterion": c, **gate["answers"].get(str(i), {"ok": None, "note": ""})}
               for i, c in enumerate(criteria, start=1)]
    exceptions = sum(1 for a in answers if not a["ok"])
    return _event(state, origin, "phase", {"from": gate["from"], "to": gate["to"], "answers": answers,
                                           "exceptions": exceptions, "skipped_open": open_tasks})


def back(state: MunicipalityState, origin: Origin, current: int, target: int) -> AuditEvent:
    """Move back to an earlier phase (recorded, and any self-check in progress ends)."""
    if target >= current:
        raise GateError(f"{state.code}: phase {target} is not before {current}")
    return _event(state, origin, "phase", {"from": current, "to": target, "back": True})
