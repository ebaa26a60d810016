"""What the conversation core needs from storage. `bot.store.TinyStore` implements it on disk."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
# What a change decides, given the municipality's state as it is inside the store's lock or transaction: the
# events to append (checked and applied through dialogs/events.py), and what to tell the caller.
Decide = Callable[["MunicipalityState"], tuple[Sequence["AuditEvent"], T]]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def frozen(value: Any) -> Any:
    """Plain JSON data made read-only: dicts become MappingProxyType, lists tuples (see MunicipalityState)."""
    if isinstance(value, dict):
        return MappingProxyType({k: frozen(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(frozen(v) for v in value)
    return value


def thawed(value: Any) -> Any:
    """Plain JSON data (new dicts and lists) from what `frozen` made, or a deep copy of plain data: what a
    store writes when a dialog hands back a piece of a state (a self-check's answers, a local task)."""
    if isinstance(value, Mapping):
        return {k: thawed(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thawed(v) for v in value]
    return value


@dataclass(frozen=True)
class Actor:
    """A person in Teams: AAD object id when Teams sends one (stable), else the channel's user id."""

    id: str
    name: str


@dataclass(frozen=True)
class TaskState:
    done: bool
    by: Actor
    at: str  # ISO 8601 UTC
    conversation: str


@dataclass(frozen=True)
class MunicipalityState:
    """One municipality's progress, read-only all the way down (mappings are MappingProxyType, lists tuples).

    Why: a store builds it once per version of the municipality's data and hands the same object to every
    reader, so a turn that reads it three times builds it once, and what is computed from it can be kept
    with it (`derived`, e.g. the phase progress). A change goes through the store, which makes a new one."""

    code: str
    tenant_id: str | None = None
    phase: int = 1  # moved only by the phase gate (or an explicit move back)
    milestones: Mapping[str, date] = field(default_factory=lambda: _EMPTY)  # the municipality's own dates
    tasks: Mapping[str, TaskState] = field(default_factory=lambda: _EMPTY)
    gate: Mapping[str, Any] | None = None  # a transition self-check in progress: {from, to, answers: {index: {ok, note}}}
    local_tasks: tuple[Mapping[str, Any], ...] = ()  # {id, phase, theme, title}: the municipality's own
    # task id -> {responsible, performer}: Actor dicts
    assignments: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: _EMPTY)
    derived: dict[object, Any] = field(default_factory=dict, init=False, compare=False, repr=False)  # computed from this state


@dataclass(frozen=True)
class Registration:
    scope: str  # "team:<id>" or "conversation:<id>": who shares this binding
    code: str
    tenant_id: str | None
    by: Actor
    at: str


@dataclass(frozen=True)
class AuditEvent:
    code: str
    action: str  # register, done, reopen, rebind, forget, milestone, phase, assign, local_add, local_remove
    task_id: str | None
    by: Actor
    at: str
    conversation: str
    scope: str | None = None  # register: the scope bound, so the event alone can restore the registration
    tenant_id: str | None = None  # register and rebind: the tenant bound
    details: dict[str, Any] | None = None  # milestone: {name, date}; phase: {from, to, answers, exceptions, skipped_open};
    # assign: {role, person}; local_add: {task}


@dataclass(frozen=True)
class TaskChange:
    """Result of a check-and-set: `changed` False means the task already was in that state (see `current`)."""

    changed: bool
    current: TaskState | None


# How long a thread remembers: a "ja" later than this answers nothing, a "den" may mean something else.
FRESH = timedelta(minutes=30)


def fresh(at: str | None, now: datetime) -> bool:
    """Whether something stamped `at` (ISO time) is recent enough for a message now to refer to it."""
    if not at:
        return False
    return now - datetime.fromisoformat(at) <= FRESH


def open_question(pending: Mapping[str, Any] | None, user: str, now: datetime) -> bool:
    """Whether `pending` is a question `user` may still answer (the bot asked them, within FRESH)."""
    if not pending:
        return False
    return pending.get("user") == user and fresh(pending.get("at"), now)


@dataclass(frozen=True)
class ThreadContext:
    """What a thread's next message may refer to: the numbered list last shown ("udført 3"), the task last
    named ("fortryd den"), and a change the bot asked about ("Mener du, at … er udført?" -> "ja")."""

    task_ids: tuple[str, ...] = ()
    last_task: str | None = None
    pending: Mapping[str, Any] | None = None  # {id, intent, slots, user, at}: plain JSON
    last_task_by: str | None = None  # who named the last task, and when: another's "den" is asked about
    last_task_at: str | None = None


@dataclass(frozen=True)
class ConversationRecord:
    """Where proactive messages for a municipality can go."""

    key: str  # the conversation id (threads folded into their channel)
    code: str
    reference: dict[str, Any]  # Bot Framework ConversationReference, serialised by bot/
    language: str
    active: bool = True
    scope: str = ""  # the registration scope it was seen in: a team that moved on gets no old nudges


class StoreUnavailable(Exception):
    """A change could not be made durable (the disk is full or failing) and was not acknowledged. `maybe_saved`:
    its line reached the audit trail before the disk failed, so after a restart it may well be there; the person
    is told that, not that nothing changed."""

    def __init__(self, message: str, maybe_saved: bool = False):
        super().__init__(message)
        self.maybe_saved = maybe_saved


def marking(task_id: str, done: bool, by: Actor, at: str, conversation: str,
            details: dict[str, Any] | None = None) -> Decide[TaskChange]:
    """Mark a task done or open, unless it already is (check-and-set: two people marking at once make one change)."""
    def decide(state: MunicipalityState) -> tuple[list[AuditEvent], TaskChange]:
        current = state.tasks.get(task_id)
        if (current is not None and current.done == done) or (current is None and not done):
            return [], TaskChange(False, current)
        event = AuditEvent(state.code, "done" if done else "reopen", task_id, by, at, conversation,
                           details=None if details is None else thawed(details))
        after = TaskState(done, by, at, conversation)
        return [event], TaskChange(True, after)
    return decide


class Store(Protocol):
    on_write: Callable[[float], None] | None  # told each change's seconds to durability (the edge's metrics)

    async def writable(self) -> bool:
        """Whether a change could be made durable now (readiness): a full disk or a lost database says no."""
        ...

    async def change(self, code: str, decide: Decide[T]) -> T:
        """The one read-modify-write: `decide` runs on the municipality's current state inside the store's lock
        or transaction; the events it returns are checked, appended to the trail and applied, all or none,
        before this returns (then they are durable)."""
        ...

    async def registration(self, scope: str) -> Registration | None: ...

    async def register(self, registration: Registration, conversation: str) -> str | None:
        """Bind the scope to the municipality; refused (returns the bound tenant) if another tenant owns it."""

    async def codes_for_tenant(self, tenant_id: str) -> list[str]: ...

    async def municipality(self, code: str) -> MunicipalityState: ...

    async def all_municipalities(self) -> list[MunicipalityState]:
        """Every registered municipality (for KOMBIT's consultants)."""

    async def set_task(self, code: str, task_id: str, done: bool, by: Actor, at: str, conversation: str,
                       details: dict[str, Any] | None = None) -> TaskChange:
        """`change` with `marking`."""

    async def record(self, event: AuditEvent) -> None:
        """`change` with one event, whatever the state (the caller decided it needs no check)."""

    async def audit(self, code: str, task_id: str | None = None, limit: int = 20) -> list[AuditEvent]:
        """The newest events history shows, newest first: from an index, whatever the trail's length."""

    def conversation_known(self, key: str, fingerprint: tuple[Any, ...]) -> bool: ...

    async def remember_conversation(self, record: ConversationRecord, fingerprint: tuple[Any, ...] | None = None) -> None: ...

    async def conversations(self) -> list[ConversationRecord]: ...

    async def deactivate_conversation(self, key: str) -> None: ...

    async def sent_nudges(self) -> set[str]: ...

    async def claim_nudge(self, key: str, owner: str, at: str, stale_before: str) -> bool: ...

    async def finish_nudge(self, key: str, owner: str, sent: bool, at: str) -> None: ...

    async def wave_signature(self, wave_id: str) -> str | None: ...

    async def set_wave_signature(self, wave_id: str, signature: str) -> None: ...

    async def language(self, user_id: str) -> str | None: ...

    async def set_language(self, user_id: str, language: str) -> None: ...

    async def last_list(self, conversation: str) -> list[str]: ...

    async def thread(self, conversation: str) -> ThreadContext: ...

    async def update_thread(self, conversation: str, **changes: Any) -> None:
        """Change some of a thread's context (task_ids, last_task, pending); the same values write nothing."""

    async def take_pending(self, conversation: str, user: str, now: datetime,
                           asked: str | None = None) -> dict[str, Any] | None:
        """The change `user` was asked about here, still open at `now` (`open_question`; given `asked`, that
        very question), cleared in the same step: two "ja" at once make it once."""

    async def checkpoint(self) -> int:
        """Write what is only cached (deferred task marks) and catch up with other processes' changes."""

    def close(self) -> None: ...

    async def aclose(self) -> None:
        """Close what must be closed on the event loop (a database's connections); `close` after it."""

    async def put_export(self, token: str, name: str, data: bytes, ttl: timedelta) -> None: ...

    async def claim_greeting(self, conversation: str, now: datetime, quiet: timedelta) -> bool:
        """Whether to greet this conversation now: not if it was greeted within `quiet` (Teams announces one
        installation twice), by this process or, with a shared database, another instance."""

    async def get_export(self, token: str) -> tuple[str, bytes] | None: ...

    async def set_last_list(self, conversation: str, task_ids: list[str]) -> None: ...


class Changes:
    """`record` and `set_task` for a store that has `change` (both stores inherit them)."""

    async def change(self, code: str, decide: Decide[T]) -> T:
        raise NotImplementedError

    async def record(self, event: AuditEvent) -> None:
        if event.details is not None:  # it may hold pieces of a (read-only) MunicipalityState, say a local task
            event = replace(event, details=thawed(event.details))
        await self.change(event.code, lambda state: ([event], None))

    async def set_task(self, code: str, task_id: str, done: bool, by: Actor, at: str, conversation: str,
                       details: dict[str, Any] | None = None) -> TaskChange:
        return await self.change(code, marking(task_id, done, by, at, conversation, details))
