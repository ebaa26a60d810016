"""The store on disk: TinyDB files for current state, an append-only JSON-lines file for the audit trail.

Files: one per municipality (its tasks, dates, phase, self-check), conversations.json, nudges.json and
lists.json (they grow with use or change often), and state.json for the rest (registrations, preferences,
waves). TinyDB rewrites a whole file on every write, so a write costs one small file, never all history.
The audit trail grows forever, so it is appended to, never rewritten.

The audit trail is the write-ahead log. A change is acknowledged once its events are fdatasynced, and
start-up replays into the state files whatever a crash kept from them. So municipality files need no fsync
(they are replaced atomically, and the trail rebuilds them; at most a self-check in progress would be asked
again after a power loss), and the hottest change, a task marked done or open, does not rewrite its
municipality's file at all: the file is written by `checkpoint`, once a second, however many marks it
holds. The other files hold what the trail does not (conversations, nudges' "sent" marks, preferences,
lists) and are fsynced before their rename. Another process that takes the lock first reads the events this
one appended (`_catch_up`), so whatever it writes holds them too.

Every change runs one at a time under a cross-process file lock, so `serve` and a command on the same
data dir cannot tear each other's writes. It runs on the event loop, disk included: a change is a few kB
of JSON and an fdatasync (~0.1 ms of CPU), and a worker thread measured dearer in every respect (+0.7 ms
CPU per change and a 2–3× longer p99 at 8 concurrent turns), because each system call in the thread must
win the GIL back from the busy loop. Waiting for another process's lock polls without blocking the loop;
reading the whole trail for "historik" runs in a worker thread. Reads need no lock: files are replaced
atomically, and each is parsed once per version (bot/json_file.py).
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from tinydb import Query, TinyDB
from tinydb.table import Document

from bot.audit_log import AuditLog
from bot.json_file import AtomicJSONStorage, Freshness, StoreError, write_atomically
from bot.json_text import dumps as encode
from bot.json_text import loads as decode
from bot.process_lock import ProcessLock
from dialogs.store import (
    Actor,
    AuditEvent,
    ConversationRecord,
    MunicipalityState,
    Registration,
    StoreUnavailable,
    TaskChange,
    TaskState,
    ThreadContext,
    frozen,
    open_question,
    thawed,
)

__all__ = ["StoreError", "TinyStore"]

_CODE = re.compile(r"\d{4}")  # municipality codes name files: nothing else may
OWN_FILES = ("conversations", "nudges", "lists")  # tables with a file of their own (the rest: state.json)
# Numbered lists remembered (one per thread; "udført 3" refers to the thread's last list). A list matters
# for minutes to days; 500 covers every thread of 98 municipalities' busy week, and keeps lists.json small.
LIST_LIMIT = 500


def _actor(d: dict) -> Actor:
    return Actor(id=d.get("id", ""), name=d.get("name", ""))


def _actor_dict(actor: Actor) -> dict:
    return {"id": actor.id, "name": actor.name}


def _event_dict(event: AuditEvent) -> dict:
    """asdict(event), without its deep copy of every value: the dict is serialised at once and dropped."""
    return {"code": event.code, "action": event.action, "task_id": event.task_id, "by": _actor_dict(event.by),
            "at": event.at, "conversation": event.conversation, "scope": event.scope, "tenant_id": event.tenant_id,
            "details": event.details}


def _reconcile_keys(event: AuditEvent) -> list[tuple]:
    """The pieces of state an event decides: after replay, each must show what the last event (in trail
    order) for it says. A registration decides its scope's row and, with a tenant, the binding; so does a
    rebind (with an empty tenant: the release of a mistaken registration)."""
    keys = []
    if event.action == "rebind" or (event.action == "register" and event.tenant_id):
        keys.append(("binding", event.code))
    key = _reconcile_key(event)
    return [key, *keys] if key else keys


def _reconcile_key(event: AuditEvent) -> tuple | None:
    if event.action in ("done", "reopen"):
        return ("task", event.code, event.task_id)
    if event.action == "register" and event.scope:
        return ("scope", event.scope)
    details = event.details or {}
    if event.action == "milestone":
        return ("milestone", event.code, details["name"])
    if event.action == "phase":
        return ("phase", event.code)
    if event.action == "assign":
        return ("assign", event.code, event.task_id, details["role"])
    if event.action in ("local_add", "local_remove"):
        return ("local", event.code, event.task_id or details["task"]["id"])
    return None


def _complete_lines(path: Path):
    """The trail's lines, without a torn last one (a crash mid-append: never acknowledged)."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        return
    with fh:
        for line in fh:
            if line.endswith(b"\n"):
                yield line


def _event(d: dict) -> AuditEvent:
    return AuditEvent(d["code"], d["action"], d.get("task_id"), _actor(d["by"]), d["at"], d.get("conversation", ""),
                      scope=d.get("scope"), tenant_id=d.get("tenant_id"), details=d.get("details"))


def _task_state(d: dict) -> TaskState:
    return TaskState(done=bool(d["done"]), by=_actor(d["by"]), at=d["at"], conversation=d.get("conversation", ""))


def _atomic(db: TinyDB) -> AtomicJSONStorage:
    """A database's storage: every one this store opens is an AtomicJSONStorage (see `_open`)."""
    storage = db.storage
    assert isinstance(storage, AtomicJSONStorage)
    return storage


def _municipality_state(data: dict, code: str) -> MunicipalityState:
    doc: dict[str, Any] = next((d for d in (data.get("municipality") or {}).values() if d.get("code") == code),
                               {"code": code})
    return MunicipalityState(
        code=code,
        tenant_id=doc.get("tenant_id"),
        phase=doc.get("phase") or 1,
        milestones=MappingProxyType({k: date.fromisoformat(v) for k, v in (doc.get("milestones") or {}).items()}),
        tasks=MappingProxyType({tid: _task_state(s) for tid, s in (doc.get("tasks") or {}).items()}),
        # Frozen copies: the dicts live in the parsed-file cache, and the state is shared by every reader.
        gate=frozen(doc.get("gate")),
        local_tasks=frozen(doc.get("local_tasks") or []),
        assignments=frozen(doc.get("assignments") or {}),
    )


class TinyStore:
    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.state_path = self.data_dir / "state.json"
        self.audit_path = self.data_dir / "audit.jsonl"
        self._file_lock = ProcessLock(self.data_dir / ".lock")
        self._writers = asyncio.Lock()  # one change at a time in this process
        self._audit = AuditLog(self.audit_path)
        self._staged: dict[AtomicJSONStorage, bytes] | None = None  # the running change's file writes
        self._freshness = Freshness()
        self._db = self._open(self.state_path)
        # Tables that grow with use or change often get files of their own, so a write rewrites only its kind:
        # claiming a nudge must not re-encode every conversation reference, nor a new list every registration.
        self._dbs = {name: self._open(self.data_dir / f"{name}.json") for name in OWN_FILES}
        self.municipalities_dir = self.data_dir / "municipalities"
        self.municipalities_dir.mkdir(exist_ok=True)
        self._municipality_dbs: dict[str, TinyDB] = {}
        self._municipality_storages: set[AtomicJSONStorage] = set()
        self._conversation_seen: dict[str, tuple] = {}  # what this process last stored per conversation
        self._deferred: set[AtomicJSONStorage] = set()  # municipality files whose newest version is cached only
        self._audit_seen = (0, 0, 0)  # (inode, offset, lines): how far this process has read or written the trail
        self.on_write: Callable[[float], None] | None = None  # told each change's seconds to durability (metrics)
        self._check_readable()

    def _check_readable(self) -> None:
        """Fail at start-up, naming the file, rather than at the first user's message."""
        self._db.storage.read()
        self._migrate()
        for code in self._codes_on_disk():
            self._storage(code).read()
        if self.audit_path.exists():
            self._replay_audit()

    def _audit_position(self) -> tuple[int, int]:
        try:
            st = os.stat(self.audit_path)
        except FileNotFoundError:
            return (0, 0)
        return (st.st_ino, st.st_size)

    def _replay_audit(self) -> None:
        """Start-up: apply to the state files what a crash kept from them, and drop a torn last line.

        Most of the trail is read without the lock (it can be long, and a running `serve` must keep
        writing); the rest, appended meanwhile, under it, so only a truly torn line is ever cut off."""
        latest: dict[tuple, AuditEvent] = {}
        with self.audit_path.open("rb") as fh:
            end, lines = self._scan(fh, 0, 0, latest)
            read_so_far = (os.fstat(fh.fileno()).st_ino, end, lines)
        with self._file_lock:
            self._freshness.expire()
            self._apply_trail(read_so_far, latest)
            self._audit.cut_torn_tail()

    def _apply_trail(self, seen: tuple[int, int, int], latest: dict[tuple, AuditEvent]) -> None:
        """Read the trail on from `seen` (inode, offset, lines) onto `latest`, make the state show it, and
        remember how far it was read. A trail replaced since (admin forget-user) is read from its start."""
        try:
            fh = self.audit_path.open("rb")
        except FileNotFoundError:
            return
        with fh:
            inode, offset, lines = seen
            now = os.fstat(fh.fileno())
            if now.st_ino != inode or now.st_size < offset:
                offset, lines = 0, 0
                latest.clear()
            end, lines = self._scan(fh, offset, lines, latest)
        self._reconcile(latest)
        self._audit_seen = (now.st_ino, end, lines)

    def _scan(self, fh, start: int, lines_before: int, latest: dict[tuple, AuditEvent]) -> tuple[int, int]:
        """Read complete lines from `start`, keeping the newest event per piece of state; returns where the
        last complete line ends and how many lines were read in all."""
        fh.seek(start)
        good_end, number = start, lines_before
        for number, line in enumerate(fh, start=lines_before + 1):
            if not line.endswith(b"\n"):
                break  # torn (a crash mid-append), or being appended right now: not an event yet
            try:
                event = _event(decode(line))
                for key in _reconcile_keys(event):
                    latest.pop(key, None)  # re-inserted: the dict keeps trail order, bindings applied last
                    latest[key] = event
                if event.action == "local_remove":  # what happened to the removed task no longer counts
                    for stale in [k for k in latest if k[0] in ("task", "assign") and k[1:3] == (event.code, event.task_id)]:
                        del latest[stale]
            except (ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
                raise StoreError(f"{self.audit_path}: line {number} is not a valid audit event; "
                                 "the file was left untouched") from None
            good_end += len(line)
        return good_end, number

    async def _write(self, fn, *args, defer: bool = False) -> Any:
        """A change: `fn` runs under the cross-process lock, its file writes staged; its result is returned
        once they are written and the audit events it appended are fsynced, so nothing is acknowledged that
        a crash could take back.

        defer: the change's municipality files are written later (`checkpoint`), for changes that the audit
        trail alone restores (a task marked done or open): the hot path then costs an append and an fsync,
        not a file rewrite per mark."""
        async with self._writers:
            await self._file_lock.acquire_async()
            self._freshness.expire()  # with the lock held, read every file as it is now
            started, before = time.perf_counter(), self._audit.appended
            try:
                self._staged = {}
                try:
                    self._catch_up()
                    result = fn(*args)
                except BaseException:
                    self._discard(self._staged)
                    raise
                finally:
                    staged, self._staged = self._staged, None
                appended = self._audit.appended > before
                if staged or appended:
                    self._commit(staged, appended, defer and appended)
                if self.on_write is not None:
                    self.on_write(time.perf_counter() - started)
                return result
            except OSError as exc:  # the disk refused (full, failing): nothing of this change is acknowledged
                where = f" ({exc.filename})" if exc.filename else ""
                raise StoreUnavailable(f"{type(exc).__name__}: {exc.strerror or exc}{where}",
                                       maybe_saved=self._audit.appended > before) from exc
            finally:
                self._file_lock.release()

    def _discard(self, staged: dict[AtomicJSONStorage, bytes]) -> None:
        """A change failed half-way: none of it is written. The caches it touched are dropped (they may also
        have held acknowledged deferred marks), and the next change re-reads the whole trail, which holds
        those marks, and any event the failed change appended, so the state files end up telling the trail's
        story."""
        for storage in staged:
            storage.settle(None)
            self._deferred.discard(storage)
        self._audit_seen = (0, 0, 0)

    def _catch_up(self) -> None:
        """Apply what other processes appended to the audit trail since this one last looked (their deferred
        changes are in no file yet), so this change builds on them and any file it writes holds them. Only
        what the state does not show yet is applied (`_reconcile`)."""
        if self._audit_position() != self._audit_seen[:2]:
            self._apply_trail(self._audit_seen, {})

    def _stage(self, storage: AtomicJSONStorage, raw: bytes) -> bool:
        if self._staged is None:
            return False  # start-up work, outside any change: written at once
        self._staged[storage] = raw  # a later write of the same file in this change supersedes it
        return True

    def _commit(self, staged: dict[AtomicJSONStorage, bytes], sync_audit: bool, defer: bool) -> None:
        """The audit events to disk first (fdatasync), then the state files they add up to."""
        try:
            if sync_audit:
                self._audit.sync()
            identities = {}
            for storage, raw in staged.items():
                if defer and storage in self._municipality_storages:
                    self._defer(storage)
                else:
                    identities[storage] = storage.write_file(raw)
        except BaseException:
            # The disk refused (full, failing). The cached versions may hold acknowledged deferred marks, so
            # they are kept, as deferred, for the next checkpoint to try again; and the next change re-reads
            # the whole trail, applying whatever the files still lack.
            for storage in staged:
                self._defer(storage)
            self._audit_seen = (0, 0, 0)
            raise
        for storage, identity in identities.items():
            storage.settle(identity)
            self._deferred.discard(storage)

    def _defer(self, storage: AtomicJSONStorage) -> None:
        """The file's newest version stays cached, for the next checkpoint to write."""
        storage.defer()
        self._deferred.add(storage)

    def _write_cached_versions(self) -> None:
        """Inside a change: write now every file whose newest version is only cached (staged or deferred)."""
        self._audit.sync()
        staged = self._staged or {}
        for storage, raw in list(staged.items()):
            storage.settle(storage.write_file(raw))
            del staged[storage]
        self._flush_deferred()

    async def checkpoint(self) -> int:
        """Write the municipality files whose newest version is only cached, and catch up with what other
        processes appended to the trail; returns how many files were written. `serve` calls it every second
        and when it stops, so neither its files nor its reads lag more than that; a crash before it loses
        nothing (start-up replays the trail)."""
        if not self._deferred and self._audit_position() == self._audit_seen[:2]:
            return 0
        return await self._write(self._flush_deferred)

    def _flush_deferred(self) -> int:
        written = 0
        for storage in list(self._deferred):
            storage.flush()
            written += not storage.deferred
        self._deferred = {s for s in self._deferred if s.deferred}
        return written

    def writable(self) -> bool:
        """Whether a byte can be written and synced in the data dir now (for /readyz): a full disk says no."""
        probe = self.data_dir / f".probe-{os.getpid()}"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, b"1")
                os.fsync(fd)
            finally:
                os.close(fd)
                probe.unlink(missing_ok=True)
        except OSError:
            return False
        return True

    def close(self) -> None:
        """Release the descriptors the store keeps open (the trail's, the lock's). Call `checkpoint` first."""
        self._audit.close()
        self._file_lock.close()

    def _open(self, path: Path, sync: bool = True) -> TinyDB:
        """sync: fsync the file before its rename. Needed where the trail cannot rebuild the file (on some file
        systems a rename without it can leave an empty file after a power loss); municipality files can
        skip it, their content is the trail's (a self-check in progress at most would be asked again)."""
        return TinyDB(path, storage=AtomicJSONStorage, sync=sync, stage=self._stage, freshness=self._freshness)

    def _db_of(self, table: str) -> TinyDB:
        return self._dbs.get(table, self._db)

    def _storage_of(self, table: str) -> AtomicJSONStorage:
        return _atomic(self._db_of(table))

    def _find(self, table: str, field: str, value: Any, storage: AtomicJSONStorage | None = None) -> dict | None:
        """The first document of `table` whose `field` is `value`: a dict lookup, not TinyDB's scan. The
        document is the cache's own: build new objects from it, never hand it out or change it."""
        docs = (storage or self._storage_of(table)).index(table, field).get(value)
        return docs[0] if docs else None

    def _doc_id(self, table: str, key_field: str, value: Any) -> int | None:
        ids = self._storage_of(table).memo(
            ("ids", table, key_field), lambda data: {d.get(key_field): int(i) for i, d in (data.get(table) or {}).items()})
        return ids.get(value)

    def _put(self, table: str, key_field: str, doc: dict) -> None:
        """Insert or update the document whose `key_field` is doc's, by its TinyDB id: one file write and no
        scan (TinyDB's upsert on a new key writes twice: an update that finds nothing, then the insert)."""
        doc_id = self._doc_id(table, key_field, doc[key_field])
        if doc_id is None:
            # The next id from the file as it is now: TinyDB's Table remembers its own, which another
            # process's insert makes stale ("Document with ID 2 already exists").
            ids = (self._db_of(table).storage.read() or {}).get(table) or {}
            self._table(table).insert(Document(doc, doc_id=max(map(int, ids), default=0) + 1))
        else:
            self._table(table).update(doc, doc_ids=[doc_id])

    def _storage(self, code: str) -> AtomicJSONStorage:
        self._mtable(code)
        return _atomic(self._municipality_dbs[code])

    def _municipality_doc(self, code: str) -> dict | None:
        return self._find("municipality", "code", code, self._storage(code))

    def _table(self, name: str):
        # No query cache: another process (the nudges command, an admin command) may have written.
        return self._db_of(name).table(name, cache_size=0)

    def _mtable(self, code: str):
        """One municipality's own file: marking a task rewrites that municipality's state, not all 98."""
        db = self._municipality_dbs.get(code)
        if db is None:
            if not _CODE.fullmatch(code or ""):
                raise ValueError(f"not a municipality code: {code!r}")
            db = self._open(self.municipalities_dir / f"{code}.json", sync=False)
            self._municipality_storages.add(_atomic(db))
            self._municipality_dbs[code] = db
        return db.table("municipality", cache_size=0)

    def _codes_on_disk(self) -> list[str]:
        return sorted(p.stem for p in self.municipalities_dir.glob("*.json") if _CODE.fullmatch(p.stem))

    def _migrate(self) -> None:
        """Older data dirs kept every table in state.json: move each to its own file. Each file is written
        before the table leaves state.json, so a crash half-way just redoes the move."""
        if not {"municipalities", *OWN_FILES} & set(self._db.storage.read() or {}):
            return
        with self._file_lock:
            self._freshness.expire()
            old = self._db.storage.read() or {}
            for doc in (old.get("municipalities") or {}).values():
                self._save_municipality(doc["code"], dict(doc))
            for name in OWN_FILES:
                if name in old:
                    self._dbs[name].storage.write({name: {**(self._dbs[name].storage.read() or {}).get(name, {}), **old[name]}})
            for name in ("municipalities", *OWN_FILES):
                if name in (self._db.storage.read() or {}):
                    self._db.drop_table(name)

    # -- registrations ----------------------------------------------------------------------------
    async def registration(self, scope: str) -> Registration | None:
        doc = self._find("registrations", "scope", scope)
        if not doc:
            return None
        return Registration(scope=doc["scope"], code=doc["code"], tenant_id=doc.get("tenant_id"),
                            by=_actor(doc["by"]), at=doc["at"])

    async def register(self, registration: Registration, conversation: str) -> str | None:
        def put():
            # Check and bind in one locked step: two tenants racing for one municipality cannot both win.
            bound = (self._municipality_doc(registration.code) or {}).get("tenant_id")
            if bound and bound != registration.tenant_id:
                return bound
            # A copy: the cached row is updated in place by the write below.
            previous = dict(self._find("registrations", "scope", registration.scope) or {})
            event = AuditEvent(registration.code, "register", None, registration.by, registration.at, conversation,
                               scope=registration.scope, tenant_id=registration.tenant_id)
            self._append_audit(event)
            self._apply(event)
            if previous and previous["code"] != registration.code:
                self._release_if_unused(previous["code"], previous.get("tenant_id"), registration)
            return None
        return await self._write(put)

    def _release_if_unused(self, code: str, tenant_id: str | None, by: Registration) -> None:
        """A scope moved to another municipality: if its tenant has no other registration for the old one,
        the old one is free again (a mistaken "tilmeld" must not lock the real owner out). Audited."""
        registrations = self._storage_of("registrations").index("registrations", "code").get(code, [])
        users = [r for r in registrations if r.get("tenant_id") == tenant_id]
        if users or not tenant_id or (self._municipality_doc(code) or {}).get("tenant_id") != tenant_id:
            return
        event = AuditEvent(code, "rebind", None, by.by, by.at, f"released-by:{by.scope}", tenant_id="")
        self._append_audit(event)
        self._apply(event)

    async def codes_for_tenant(self, tenant_id: str) -> list[str]:
        rows = self._storage_of("registrations").index("registrations", "tenant_id").get(tenant_id, [])
        return sorted({d["code"] for d in rows})

    # -- progress ---------------------------------------------------------------------------------
    async def municipality(self, code: str) -> MunicipalityState:
        # Built once per version of the municipality's file, and shared: MunicipalityState is read-only.
        return self._storage(code).memo(("state", code), lambda data: _municipality_state(data, code))

    async def all_municipalities(self) -> list[MunicipalityState]:
        states = [await self.municipality(code) for code in self._codes_on_disk()]
        return [state for state in states if state.tenant_id]

    async def set_task(self, code: str, task_id: str, done: bool, by: Actor, at: str, conversation: str,
                       details: dict | None = None) -> TaskChange:
        def change():
            doc = self._municipality_doc(code) or {}
            current = (doc.get("tasks") or {}).get(task_id)
            if current is not None and bool(current["done"]) == done:
                return TaskChange(False, _task_state(current))
            if current is None and not done:
                return TaskChange(False, None)
            event = AuditEvent(code, "done" if done else "reopen", task_id, by, at, conversation,
                               details=None if details is None else thawed(details))
            self._append_audit(event)
            return TaskChange(True, _task_state(self._apply(event)))
        return await self._write(change, defer=True)

    # -- the audit trail is the write-ahead log; the state files are what it adds up to ----------------
    def _apply(self, event: AuditEvent) -> dict | None:
        """Make the state files reflect one audit event. Idempotent: replaying an applied event changes nothing.

        New dicts throughout: `doc` is the parsed-file cache's own and must not change under a reader."""
        doc = self._municipality_doc(event.code)
        base = doc or {"code": event.code, "tasks": {}}
        if event.action in ("done", "reopen"):
            new = {"done": event.action == "done", "by": _actor_dict(event.by), "at": event.at,
                   "conversation": event.conversation}
            self._save_municipality(event.code, {**base, "tasks": {**(base.get("tasks") or {}), event.task_id: new}})
            return new
        if event.action == "register" and event.scope:
            # The binding first, then the registration: a crash between them leaves a bound municipality
            # without this scope's row, which start-up replays (a row without a binding would let anyone claim).
            if not base.get("tenant_id"):
                self._bind(event.code, event.tenant_id)
            registration = Registration(event.scope, event.code, event.tenant_id, event.by, event.at)
            self._put("registrations", "scope", asdict(registration))
        elif event.action == "rebind":  # an empty tenant: the release of a mistaken registration
            self._bind(event.code, event.tenant_id)
        elif event.action == "milestone" and event.details:
            milestones = {**(base.get("milestones") or {}), event.details["name"]: event.details["date"]}
            self._save_municipality(event.code, {**base, "milestones": milestones})
        elif event.action == "assign" and event.details and event.task_id:
            assignments = dict(base.get("assignments") or {})
            assignments[event.task_id] = {**assignments.get(event.task_id, {}), event.details["role"]: event.details["person"]}
            self._save_municipality(event.code, {**base, "assignments": assignments})
        elif event.action == "local_add" and event.details:
            local = [t for t in base.get("local_tasks") or [] if t["id"] != event.details["task"]["id"]]
            self._save_municipality(event.code, {**base, "local_tasks": [*local, event.details["task"]]})
        elif event.action == "local_remove" and event.task_id:
            # Gone with everything about it: a task re-added later under the same title starts afresh.
            self._save_municipality(event.code, {
                **base,
                "local_tasks": [t for t in base.get("local_tasks") or [] if t["id"] != event.task_id],
                "tasks": {k: v for k, v in (base.get("tasks") or {}).items() if k != event.task_id},
                "assignments": {k: v for k, v in (base.get("assignments") or {}).items() if k != event.task_id}})
        elif event.action == "phase" and event.details:
            self._save_municipality(event.code, {**base, "phase": event.details["to"], "gate": None, "phase_at": event.at})
        return None

    def _bind(self, code: str, tenant_id: str | None) -> None:
        """Bind the municipality to a tenant; an empty one releases it."""
        doc = self._municipality_doc(code) or {"code": code, "tasks": {}}
        self._save_municipality(code, {**doc, "tenant_id": tenant_id or None})

    def _save_municipality(self, code: str, doc: dict) -> None:
        """Write a municipality's one document by its TinyDB id (no query scan over the table)."""
        stored = (self._storage(code).read() or {}).get("municipality") or {}
        doc_id = next((int(k) for k, d in stored.items() if d.get("code") == code), 1)
        self._mtable(code).upsert(Document(doc, doc_id=doc_id))

    async def record(self, event: AuditEvent) -> None:
        if event.details is not None:  # it may hold pieces of a (read-only) MunicipalityState, say a local task
            event = replace(event, details=thawed(event.details))

        def write():
            self._append_audit(event)
            self._apply(event)
        await self._write(write)

    async def set_gate(self, code: str, gate: dict | None) -> None:
        """The self-check in progress. Not audited answer by answer: the phase event carries the outcome."""
        def write():
            self._save_municipality(code, {**(self._municipality_doc(code) or {"code": code, "tasks": {}}), "gate": thawed(gate)})
        await self._write(write)

    def _reconcile(self, latest: dict[tuple, AuditEvent]) -> None:
        """Make every piece of state show what its last event in the trail says, where it does not already:
        after a crash between an append and a file write, and when catching up with other processes.
        Compared by effect, not by timestamp (two racing turns may append in the other order than their
        clocks), and applied only where missing (re-applying a phase event would wipe a self-check begun
        since). Bindings come last, so a replayed registration cannot undo a later release."""
        ordered = sorted(latest.items(), key=lambda item: item[0][0] == "binding")  # stable: trail order kept
        for (kind, *where), event in ordered:
            if self._shows(kind, where, event):
                continue
            if kind == "binding":
                self._bind(event.code, event.tenant_id)
            else:
                self._apply(event)

    def _shows(self, kind: str, where: list, event: AuditEvent) -> bool:
        """Whether the state already shows this event's effect."""
        doc = self._municipality_doc(event.code) or {}
        if kind == "task":
            stored = (doc.get("tasks") or {}).get(event.task_id) or {}
            return (bool(stored.get("done")) == (event.action == "done") and stored.get("at") == event.at
                    and (stored.get("by") or {}).get("id") == event.by.id)
        if kind == "scope":
            row = self._find("registrations", "scope", event.scope) or {}
            return row.get("code") == event.code and row.get("at") == event.at
        if kind == "binding":
            return doc.get("tenant_id") == (event.tenant_id or None)
        details = event.details or {}
        if kind == "milestone":
            return (doc.get("milestones") or {}).get(details["name"]) == details["date"]
        if kind == "phase":
            return doc.get("phase") == details["to"] and doc.get("phase_at") == event.at
        if kind == "assign":
            return ((doc.get("assignments") or {}).get(event.task_id) or {}).get(details["role"]) == details["person"]
        present = any(t["id"] == where[1] for t in doc.get("local_tasks") or [])  # a local task
        return present == (event.action == "local_add")

    # -- audit ------------------------------------------------------------------------------------
    def _append_audit(self, event: AuditEvent) -> None:
        """Append (the caller holds the file lock); `_write` fsyncs before acknowledging."""
        _reconcile_keys(event)  # an event replay would refuse (say, a milestone without details) is never written
        end = self._audit.append(encode(_event_dict(event)) + b"\n")
        self._audit_seen = (self._audit.inode, end, self._audit_seen[2] + 1)

    async def audit(self, code: str, task_id: str | None = None, limit: int = 20) -> list[AuditEvent]:
        def read():
            out = []
            for line in _complete_lines(self.audit_path):
                d = decode(line)
                if d["code"] == code and (task_id is None or d.get("task_id") == task_id):
                    out.append(_event(d))
            return out[-limit:][::-1]  # newest first
        # No lock: the trail is only ever appended to (forget-user replaces it atomically), and a torn last
        # line is skipped above.
        return await asyncio.to_thread(read)

    # -- per-user and per-conversation memory -----------------------------------------------------
    async def language(self, user_id: str) -> str | None:
        doc = self._find("preferences", "user_id", user_id)
        return doc.get("language") if doc else None

    async def set_language(self, user_id: str, language: str) -> None:
        await self._write(lambda: self._put("preferences", "user_id", {"user_id": user_id, "language": language}))

    def _thread_now(self, conversation: str) -> ThreadContext:
        doc = self._find("lists", "conversation", conversation)
        if not doc:
            return ThreadContext()
        return ThreadContext(tuple(doc.get("task_ids") or ()), doc.get("last_task"), thawed(doc.get("pending")),
                             doc.get("last_task_by"), doc.get("last_task_at"))

    async def thread(self, conversation: str) -> ThreadContext:
        return self._thread_now(conversation)

    def _put_thread(self, conversation: str, new: ThreadContext) -> None:
        lists = self._table("lists")
        old_id = self._doc_id("lists", "conversation", conversation)
        if old_id is not None:
            lists.remove(doc_ids=[old_id])  # re-inserted below with the newest id: ids order lists by last use
        self._put("lists", "conversation", {
            "conversation": conversation, "task_ids": list(new.task_ids), "last_task": new.last_task,
            "pending": thawed(new.pending), "last_task_by": new.last_task_by, "last_task_at": new.last_task_at})
        if len(lists) > LIST_LIMIT:  # the smallest ids: the threads whose lists were shown longest ago
            lists.remove(doc_ids=sorted(doc.doc_id for doc in lists.all())[:len(lists) - LIST_LIMIT])

    async def update_thread(self, conversation: str, **changes: Any) -> None:
        current = self._thread_now(conversation)
        if replace(current, **changes) == current:
            return  # "hvad skal vi nu?" twice, the same task named again: nothing to write

        def write():  # read again under the lock: another process may have changed the thread meanwhile
            current = self._thread_now(conversation)
            new = replace(current, **changes)
            if new != current:
                self._put_thread(conversation, new)
        await self._write(write)

    async def take_pending(self, conversation: str, user: str, now: datetime, asked: str | None = None) -> dict | None:
        def take():
            current = self._thread_now(conversation)
            pending = current.pending
            if not open_question(pending, user, now):
                return None
            if asked is not None and pending.get("id") != asked:
                return None  # the "Ja" of an older question
            self._put_thread(conversation, replace(current, pending=None))
            return dict(pending)
        return await self._write(take)

    async def last_list(self, conversation: str) -> list[str]:
        return list((await self.thread(conversation)).task_ids)

    async def set_last_list(self, conversation: str, task_ids: list[str]) -> None:
        """Remember the numbers just shown. The same list again writes nothing ("hvad skal vi nu?" twice)."""
        await self.update_thread(conversation, task_ids=tuple(task_ids))

    # -- operator commands (python -m bot admin ...) ----------------------------------------------
    async def rebind(self, code: str, tenant_id: str, by: Actor, at: str) -> str | None:
        """Bind a municipality to another tenant; returns the previous tenant. Audited."""
        def change():
            previous = (self._municipality_doc(code) or {}).get("tenant_id")
            event = AuditEvent(code, "rebind", None, by, at, f"tenant:{previous or '-'}->{tenant_id}", tenant_id=tenant_id)
            self._append_audit(event)
            self._apply(event)
            return previous
        return await self._write(change)

    async def forget_user(self, user_id: str, pseudonym: Actor, by: Actor, at: str) -> int:
        """GDPR erasure: the person becomes `pseudonym` everywhere and loses their preferences.

        Returns how many audit events named them. The audit file is rewritten atomically, so a crash
        leaves either the old trail or the new one."""
        def erase():
            replaced = _actor_dict(pseudonym)
            # The trail first: if this fails half-way, the change is discarded and nothing names them less.
            count, codes = self._pseudonymise_trail(user_id, replaced)
            for code in sorted(set(self._codes_on_disk()) | set(self._municipality_dbs)):
                doc = self._municipality_doc(code)
                if not doc:
                    continue
                tasks = {tid: ({**st, "by": replaced} if st.get("by", {}).get("id") == user_id else st)
                         for tid, st in (doc.get("tasks") or {}).items()}
                assignments = {tid: {role: (replaced if (person or {}).get("id") == user_id else person)
                                     for role, person in roles.items()}
                               for tid, roles in (doc.get("assignments") or {}).items()}
                gate = doc.get("gate")
                if gate and (gate.get("started_by") or {}).get("id") == user_id:
                    gate = {**gate, "started_by": replaced}
                changes = {"tasks": tasks, "assignments": assignments, "gate": gate}
                if any(changes[k] != doc.get(k) for k in changes):
                    self._save_municipality(code, {**doc, **changes})
            self._table("registrations").update({"by": replaced}, Query().by.id == user_id)
            conversations = self._table("conversations")
            for doc in conversations.all():
                user = (doc.get("reference") or {}).get("user") or {}
                if user_id in (user.get("id"), user.get("aadObjectId")):
                    conversations.update({"reference": {**doc["reference"], "user": None}}, Query().key == doc["key"])
            self._table("preferences").remove(Query().user_id == user_id)
            # A change the bot asked them about ("Mener du …?") is forgotten with them.
            # So is a question about them ("Skal jeg sætte Lars …?" holds Lars's id and name until answered).
            self._table("lists").update({"pending": None}, Query().pending.test(
                lambda p: bool(p) and (p.get("user") == user_id or user_id.encode() in encode(p))))
            self._table("lists").update({"last_task_by": None, "last_task_at": None}, Query().last_task_by == user_id)
            for code in sorted(codes):
                self._append_audit(AuditEvent(code, "forget", None, by, at, f"person:{pseudonym.id}"))
            return count
        return await self._write(erase)

    def _pseudonymise_trail(self, user_id: str, replaced: dict) -> tuple[int, set[str]]:
        """Rewrite the trail (atomically, fsynced) with the person replaced; a torn last line, never
        acknowledged, is left out. Returns how many events named them and their municipalities."""
        count, lines, codes = 0, [], set()
        for raw in _complete_lines(self.audit_path):
            event = decode(raw)
            named = event.get("by", {}).get("id") == user_id
            person = (event.get("details") or {}).get("person")
            if named:
                event["by"] = replaced
            if person and person.get("id") == user_id:  # assigned as ansvarlig/udfører
                event["details"] = {**event["details"], "person": replaced}
                named = True
            if named:
                count += 1
                codes.add(event["code"])
            lines.append(encode(event) + b"\n")
        if self.audit_path.exists():
            write_atomically(self.audit_path, b"".join(lines), sync=True)
        return count, codes

    async def backup(self, target: Path) -> list[Path]:
        """A consistent copy of the data dir, taken under the same lock writers hold."""
        def copy():
            self._write_cached_versions()  # deferred marks, and what catching up with others just applied
            target.mkdir(parents=True, exist_ok=True)
            copied = []
            (target / "municipalities").mkdir(exist_ok=True)
            sources = [self.state_path, *(self.data_dir / f"{name}.json" for name in OWN_FILES), self.audit_path,
                       *(self.municipalities_dir / f"{c}.json" for c in self._codes_on_disk())]
            for source in sources:
                if source.exists():
                    destination = target / source.relative_to(self.data_dir)
                    write_atomically(destination, source.read_bytes(), sync=True)
                    copied.append(destination)
            return copied
        return await self._write(copy)

    # -- proactive messages: where they can go and which were sent ------------------------------------
    def conversation_known(self, key: str, fingerprint: tuple) -> bool:
        """True when this process last stored this conversation with the same fingerprint and it is active:
        then the caller need not even build the reference. A deactivation forgets the fingerprint."""
        if self._conversation_seen.get(key) != fingerprint:
            return False
        # Another process (a sweep that met a 403) may have deactivated it since: then it must be stored again.
        return (self._find("conversations", "key", key) or {}).get("active", True)

    async def remember_conversation(self, record: ConversationRecord, fingerprint: tuple | None = None) -> None:
        """Keep the newest reference for a conversation; a turn that changes nothing writes nothing."""
        fingerprint = fingerprint or (record.code, json.dumps(record.reference, sort_keys=True), record.language)
        if self.conversation_known(record.key, fingerprint):
            return

        def write():
            doc = asdict(record)
            if self._find("conversations", "key", record.key) != doc:
                self._put("conversations", "key", doc)
        await self._write(write)
        self._conversation_seen[record.key] = fingerprint

    async def conversations(self) -> list[ConversationRecord]:
        return [ConversationRecord(**d) for d in self._table("conversations").all() if d.get("active", True)]

    async def deactivate_conversation(self, key: str) -> None:
        """The bot was removed there (or the Connector answers 403/404): no more proactive messages."""
        self._conversation_seen.pop(key, None)

        def write():
            doc = self._find("conversations", "key", key)
            if doc and doc.get("active", True):
                self._put("conversations", "key", {**doc, "active": False})
        await self._write(write)

    async def sent_nudges(self) -> set[str]:
        return {d["key"] for d in self._table("nudges").all() if d.get("state") == "sent"}

    async def claim_nudge(self, key: str, owner: str, at: str, stale_before: str) -> bool:
        """Take a nudge for sending, at most one sender at a time, across processes.

        A claim older than `stale_before` belonged to a sender that died; it may be taken over."""
        def claim():
            doc = self._find("nudges", "key", key)
            if doc and (doc["state"] == "sent" or doc["at"] >= stale_before):
                return False
            self._put("nudges", "key", {"key": key, "state": "claimed", "owner": owner, "at": at})
            return True
        return await self._write(claim)

    async def finish_nudge(self, key: str, owner: str, sent: bool, at: str) -> None:
        """Sent: never again. Not sent: the claim is dropped so a later sweep tries again."""
        def finish():
            if sent:
                self._put("nudges", "key", {"key": key, "state": "sent", "owner": owner, "at": at})
                return
            doc = self._find("nudges", "key", key)
            if doc and doc["owner"] == owner and doc["state"] == "claimed":
                self._table("nudges").remove(doc_ids=[self._doc_id("nudges", "key", key)])
        await self._write(finish)

    async def wave_signature(self, wave_id: str) -> str | None:
        doc = self._find("waves", "id", wave_id)
        return doc["signature"] if doc else None

    async def set_wave_signature(self, wave_id: str, signature: str) -> None:
        await self._write(lambda: self._put("waves", "id", {"id": wave_id, "signature": signature}))
