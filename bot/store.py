"""The store on disk: TinyDB for current state, an append-only JSON-lines file for the audit trail.

Why this split: TinyDB rewrites its whole file on every write, so it holds only what stays small (98
municipalities' task states, registrations, preferences). The audit trail grows forever, so it is
appended to, never rewritten. Every write is atomic (temp file, fsync, rename, fsync dir) and runs under
a cross-process file lock, so `serve` and a command on the same data dir cannot tear each other's
writes. Blocking file work runs in a worker thread so the event loop keeps serving.
"""
from __future__ import annotations

import asyncio
import copy
import json
import os
import re
import threading
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

from filelock import FileLock
from tinydb import Query, TinyDB
from tinydb.storages import Storage

from dialogs.store import (Actor, AuditEvent, ConversationRecord, MunicipalityState, Registration, TaskChange,
                           TaskState)


_CODE = re.compile(r"\d{4}")  # municipality codes name files: nothing else may


class StoreError(Exception):
    """The data dir cannot be used as it is. The message names the file; the file is left untouched."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AtomicJSONStorage(Storage):
    """TinyDB storage whose write is all-or-nothing: a crash leaves the old file or the new one."""

    def __init__(self, path: Path):
        self.path = path
        # The parsed file, valid while the file's identity is unchanged. An atomic replace (ours or another
        # process's) gives a new inode, so a stale cache is impossible; a turn's reads cost a stat().
        self._cached: tuple[tuple, dict] | None = None

    def _identity(self) -> tuple | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def read(self) -> dict | None:
        identity = self._identity()
        if identity is None:
            return None
        if self._cached and self._cached[0] == identity:
            return self._cached[1]
        data = self._parse()
        if data is not None:
            self._cached = (identity, data)
        return data

    def _parse(self) -> dict | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        if not raw.strip():
            return None
        try:
            data = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise StoreError(f"{self.path}: not valid JSON ({exc}); the file was left untouched") from None
        if not isinstance(data, dict):
            raise StoreError(f"{self.path}: expected a JSON object; the file was left untouched")
        return data

    def write(self, data: dict) -> None:
        self._cached = None  # TinyDB mutates what read() returned: if this write fails, that copy is wrong
        self.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
        identity = self._identity()
        if identity:
            self._cached = (identity, data)

    def write_text(self, text: str) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)

    def close(self) -> None:
        pass


def _actor(d: dict) -> Actor:
    return Actor(id=d.get("id", ""), name=d.get("name", ""))


def _reconcile_key(event: AuditEvent) -> tuple | None:
    """Which piece of state an event decides; the newest event per key is what state.json must show."""
    if event.action in ("done", "reopen"):
        return ("task", event.code, event.task_id)
    if event.action == "register" and event.scope:
        return ("scope", event.scope)
    if event.action == "milestone":
        return ("milestone", event.code, event.details["name"])
    if event.action == "phase":
        return ("phase", event.code)
    if event.action == "assign":
        return ("assign", event.code, event.task_id, event.details["role"])
    if event.action in ("local_add", "local_remove"):
        return ("local", event.code, event.task_id or event.details["task"]["id"])
    return None


def _event(d: dict) -> AuditEvent:
    return AuditEvent(d["code"], d["action"], d.get("task_id"), _actor(d["by"]), d["at"], d.get("conversation", ""),
                      scope=d.get("scope"), tenant_id=d.get("tenant_id"), details=d.get("details"))


def _task_state(d: dict) -> TaskState:
    return TaskState(done=bool(d["done"]), by=_actor(d["by"]), at=d["at"], conversation=d.get("conversation", ""))


class TinyStore:
    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.state_path = self.data_dir / "state.json"
        self.audit_path = self.data_dir / "audit.jsonl"
        self._file_lock = FileLock(str(self.data_dir / ".lock"))
        self._thread_lock = threading.Lock()
        self._db = TinyDB(self.state_path, storage=AtomicJSONStorage)
        self.municipalities_dir = self.data_dir / "municipalities"
        self.municipalities_dir.mkdir(exist_ok=True)
        self._municipality_dbs: dict[str, TinyDB] = {}
        self._conversation_seen: dict[str, tuple] = {}  # what this process last stored per conversation
        self._check_readable()

    def _check_readable(self) -> None:
        """Fail at start-up, naming the file, rather than at the first user's message."""
        self._db.storage.read()
        self._migrate()
        for code in self._codes_on_disk():
            self._mtable(code)
            self._municipality_dbs[code].storage.read()
        if not self.audit_path.exists():
            return
        good_end, latest = 0, {}
        with self.audit_path.open("rb") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.endswith(b"\n"):
                    break  # a torn last line from a crash mid-append: that write was never acknowledged
                try:
                    event = _event(json.loads(line.decode("utf-8")))
                    key = _reconcile_key(event)
                    if key:
                        latest[key] = event
                    if event.action == "local_remove":  # what happened to the removed task no longer counts
                        for stale in [k for k in latest if k[0] in ("task", "assign") and k[1:3] == (event.code, event.task_id)]:
                            del latest[stale]
                except (ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
                    raise StoreError(f"{self.audit_path}: line {number} is not a valid audit event; "
                                     "the file was left untouched") from None
                good_end = fh.tell()
        with self._file_lock, self._thread_lock:
            if good_end < self.audit_path.stat().st_size:
                with self.audit_path.open("r+b") as fh:  # drop only the torn, never-acknowledged tail
                    fh.truncate(good_end)
                    os.fsync(fh.fileno())
            self._reconcile(latest)

    async def _run(self, fn, *args) -> Any:
        """Writes (and big reads): in a worker thread, under the cross-process lock."""
        return await asyncio.to_thread(self._locked, fn, *args)

    async def _read(self, fn, *args) -> Any:
        """Small reads, inline: the parsed file is cached by its identity, so this is a stat() and a dict
        lookup. No file lock is needed (writers replace the file atomically); the thread lock keeps a read
        from seeing TinyDB's half-updated copy while a writer thread works on it."""
        with self._thread_lock:
            return fn(*args)

    def _locked(self, fn, *args) -> Any:
        # The file lock first: waiting for another process must not hold the thread lock, which inline reads
        # on the event loop also take.
        with self._file_lock, self._thread_lock:
            return fn(*args)

    def _table(self, name: str):
        # No query cache: another process (the nudges command, an admin command) may have written.
        return self._db.table(name, cache_size=0)

    def _mtable(self, code: str):
        """One municipality's own file: marking a task rewrites that municipality's state, not all 98."""
        db = self._municipality_dbs.get(code)
        if db is None:
            if not _CODE.fullmatch(code or ""):
                raise ValueError(f"not a municipality code: {code!r}")
            db = TinyDB(self.municipalities_dir / f"{code}.json", storage=AtomicJSONStorage)
            self._municipality_dbs[code] = db
        return db.table("municipality", cache_size=0)

    def _codes_on_disk(self) -> list[str]:
        return sorted(p.stem for p in self.municipalities_dir.glob("*.json") if _CODE.fullmatch(p.stem))

    def _migrate(self) -> None:
        """Data dirs from before the split kept every municipality in state.json: move them to their files."""
        if "municipalities" not in (self._db.storage.read() or {}):
            return
        with self._file_lock, self._thread_lock:
            for doc in self._table("municipalities").all():
                self._mtable(doc["code"]).upsert(dict(doc), Query().code == doc["code"])
            self._db.drop_table("municipalities")  # only after every file is written: a crash just redoes this

    # -- registrations ----------------------------------------------------------------------------
    async def registration(self, scope: str) -> Registration | None:
        def get():
            doc = self._table("registrations").get(Query().scope == scope)
            if not doc:
                return None
            return Registration(scope=doc["scope"], code=doc["code"], tenant_id=doc.get("tenant_id"),
                                by=_actor(doc["by"]), at=doc["at"])
        return await self._read(get)

    async def register(self, registration: Registration, conversation: str) -> str | None:
        def put():
            # Check and bind in one locked step: two tenants racing for one municipality cannot both win.
            municipalities = self._mtable(registration.code)
            doc = municipalities.get(Query().code == registration.code)
            bound = doc.get("tenant_id") if doc else None
            if bound and bound != registration.tenant_id:
                return bound
            previous = self._table("registrations").get(Query().scope == registration.scope)
            event = AuditEvent(registration.code, "register", None, registration.by, registration.at, conversation,
                               scope=registration.scope, tenant_id=registration.tenant_id)
            self._append_audit(event)
            self._apply(event)
            if previous and previous["code"] != registration.code:
                self._release_if_unused(previous["code"], previous.get("tenant_id"), registration, conversation)
            return None
        return await self._run(put)

    def _release_if_unused(self, code: str, tenant_id: str | None, by: Registration, conversation: str) -> None:
        """A scope moved to another municipality: if its tenant has no other registration for the old one,
        the old one is free again (a mistaken "tilmeld" must not lock the real owner out). Audited."""
        users = [r for r in self._table("registrations").search(Query().code == code) if r.get("tenant_id") == tenant_id]
        doc = self._mtable(code).get(Query().code == code) or {}
        if users or not tenant_id or doc.get("tenant_id") != tenant_id:
            return
        event = AuditEvent(code, "rebind", None, by.by, by.at, f"released-by:{by.scope}", tenant_id="")
        self._append_audit(event)
        self._mtable(code).update({"tenant_id": None}, Query().code == code)

    async def codes_for_tenant(self, tenant_id: str) -> list[str]:
        def get():
            return sorted({d["code"] for d in self._table("registrations").search(Query().tenant_id == tenant_id)})
        return await self._read(get)

    # -- progress ---------------------------------------------------------------------------------
    async def municipality(self, code: str) -> MunicipalityState:
        def get():
            doc = self._mtable(code).get(Query().code == code) or {"code": code}
            return MunicipalityState(
                code=code,
                tenant_id=doc.get("tenant_id"),
                phase=doc.get("phase") or 1,
                milestones={k: date.fromisoformat(v) for k, v in (doc.get("milestones") or {}).items()},
                tasks={tid: _task_state(s) for tid, s in (doc.get("tasks") or {}).items()},
                # Copies: these dicts live in the parsed-file cache, which a caller must never change in place.
                gate=copy.deepcopy(doc.get("gate")),
                local_tasks=copy.deepcopy(doc.get("local_tasks") or []),
                assignments=copy.deepcopy(doc.get("assignments") or {}),
            )
        return await self._read(get)

    async def all_municipalities(self) -> list[MunicipalityState]:
        def codes():
            return [code for code in self._codes_on_disk()
                    if (self._mtable(code).get(Query().code == code) or {}).get("tenant_id")]
        return [await self.municipality(code) for code in await self._read(codes)]

    async def set_task(self, code: str, task_id: str, done: bool, by: Actor, at: str, conversation: str,
                       details: dict | None = None) -> TaskChange:
        def change():
            doc = self._mtable(code).get(Query().code == code) or {}
            current = (doc.get("tasks") or {}).get(task_id)
            if current is not None and bool(current["done"]) == done:
                return TaskChange(False, _task_state(current))
            if current is None and not done:
                return TaskChange(False, None)
            event = AuditEvent(code, "done" if done else "reopen", task_id, by, at, conversation, details=details)
            self._append_audit(event)
            return TaskChange(True, _task_state(self._apply(event)))
        return await self._run(change)

    # -- the audit trail is the write-ahead log; state.json is what it adds up to -----------------------
    def _apply(self, event: AuditEvent) -> dict | None:
        """Make state.json reflect one audit event. Idempotent: replaying an applied event changes nothing."""
        municipalities = self._mtable(event.code)
        doc = municipalities.get(Query().code == event.code)
        if event.action in ("done", "reopen"):
            tasks = dict((doc or {}).get("tasks") or {})
            new = {"done": event.action == "done", "by": asdict(event.by), "at": event.at, "conversation": event.conversation}
            tasks[event.task_id] = new
            municipalities.upsert({**(doc or {"code": event.code}), "tasks": tasks}, Query().code == event.code)
            return new
        if event.action == "register" and event.scope:
            # The binding first, then the registration: a crash between them leaves a bound municipality
            # without this scope's row, which start-up replays (a row without a binding would let anyone claim).
            if doc is None:
                municipalities.insert({"code": event.code, "tenant_id": event.tenant_id, "tasks": {}})
            elif not doc.get("tenant_id"):
                municipalities.update({"tenant_id": event.tenant_id}, Query().code == event.code)
            registration = Registration(event.scope, event.code, event.tenant_id, event.by, event.at)
            self._table("registrations").upsert(asdict(registration), Query().scope == event.scope)
        elif event.action == "rebind" and event.tenant_id:
            municipalities.upsert({**(doc or {"code": event.code, "tasks": {}}), "tenant_id": event.tenant_id},
                                  Query().code == event.code)
        elif event.action == "milestone" and event.details:
            milestones = {**((doc or {}).get("milestones") or {}), event.details["name"]: event.details["date"]}
            municipalities.upsert({**(doc or {"code": event.code, "tasks": {}}), "milestones": milestones},
                                  Query().code == event.code)
        elif event.action == "assign" and event.details and event.task_id:
            assignments = dict((doc or {}).get("assignments") or {})
            entry = {**assignments.get(event.task_id, {}), event.details["role"]: event.details["person"]}
            assignments[event.task_id] = entry
            municipalities.upsert({**(doc or {"code": event.code, "tasks": {}}), "assignments": assignments},
                                  Query().code == event.code)
        elif event.action == "local_add" and event.details:
            local = [t for t in (doc or {}).get("local_tasks") or [] if t["id"] != event.details["task"]["id"]]
            municipalities.upsert({**(doc or {"code": event.code, "tasks": {}}),
                                   "local_tasks": [*local, event.details["task"]]}, Query().code == event.code)
        elif event.action == "local_remove" and event.task_id:
            # Gone with everything about it: a task re-added later under the same title starts afresh.
            local = [t for t in (doc or {}).get("local_tasks") or [] if t["id"] != event.task_id]
            tasks = {k: v for k, v in ((doc or {}).get("tasks") or {}).items() if k != event.task_id}
            assignments = {k: v for k, v in ((doc or {}).get("assignments") or {}).items() if k != event.task_id}
            municipalities.upsert({**(doc or {"code": event.code}), "local_tasks": local, "tasks": tasks,
                                   "assignments": assignments}, Query().code == event.code)
        elif event.action == "phase" and event.details:
            municipalities.upsert({**(doc or {"code": event.code, "tasks": {}}), "phase": event.details["to"],
                                   "gate": None, "phase_at": event.at}, Query().code == event.code)
        return None

    async def record(self, event: AuditEvent) -> None:
        def write():
            self._append_audit(event)
            self._apply(event)
        await self._run(write)

    async def set_gate(self, code: str, gate: dict | None) -> None:
        """The self-check in progress. Not audited answer by answer: the phase event carries the outcome."""
        def write():
            doc = self._mtable(code).get(Query().code == code) or {"code": code, "tasks": {}}
            self._mtable(code).upsert({**doc, "gate": gate}, Query().code == code)
        await self._run(write)

    def _reconcile(self, latest: dict[tuple, AuditEvent]) -> int:
        """After a crash between appending an event and writing state.json, apply what state is missing.

        `latest` holds the newest event per task ("task", code, task_id) and per registration scope."""
        replayed = 0
        for (kind, *where), event in latest.items():
            doc = self._mtable(event.code).get(Query().code == event.code) or {}
            if kind == "task":
                stored = (doc.get("tasks") or {}).get(event.task_id)
            elif kind == "scope":
                stored = self._table("registrations").get(Query().scope == event.scope)
                if stored and stored.get("code") == event.code and event.tenant_id and not doc.get("tenant_id"):
                    stored = None  # the row without its binding: replay binds it
            elif kind == "milestone":
                have = (doc.get("milestones") or {}).get(event.details["name"])
                stored = {"at": event.at} if have == event.details["date"] else None
            elif kind == "phase":
                stored = {"at": doc.get("phase_at", "")}
            elif kind == "assign":
                person = ((doc.get("assignments") or {}).get(event.task_id) or {}).get(event.details["role"])
                stored = {"at": event.at} if person == event.details["person"] else None
            else:  # a local task: added or removed
                present = any(t["id"] == where[1] for t in doc.get("local_tasks") or [])
                stored = {"at": event.at} if present == (event.action == "local_add") else None
            if stored is None or stored.get("at", "") < event.at:
                self._apply(event)
                replayed += 1
        return replayed

    # -- audit ------------------------------------------------------------------------------------
    def _append_audit(self, event: AuditEvent) -> None:
        line = json.dumps(asdict(event), ensure_ascii=False, separators=(",", ":")) + "\n"
        fresh = not self.audit_path.exists()
        with self.audit_path.open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        if fresh:
            _fsync_dir(self.data_dir)

    async def audit(self, code: str, task_id: str | None = None, limit: int = 20) -> list[AuditEvent]:
        def read():
            if not self.audit_path.exists():
                return []
            out = []
            with self.audit_path.open(encoding="utf-8") as fh:
                for line in fh:
                    if not line.endswith("\n"):
                        continue
                    d = json.loads(line)
                    if d["code"] == code and (task_id is None or d.get("task_id") == task_id):
                        out.append(_event(d))
            return out[-limit:][::-1]  # newest first
        # No lock: the trail is only ever appended to (forget-user replaces it atomically), and a torn last
        # line is skipped above.
        return await asyncio.to_thread(read)

    # -- per-user and per-conversation memory -----------------------------------------------------
    async def language(self, user_id: str) -> str | None:
        def get():
            doc = self._table("preferences").get(Query().user_id == user_id)
            return doc.get("language") if doc else None
        return await self._read(get)

    async def set_language(self, user_id: str, language: str) -> None:
        await self._run(lambda: self._table("preferences").upsert({"user_id": user_id, "language": language},
                                                                   Query().user_id == user_id))

    async def last_list(self, conversation: str) -> list[str]:
        def get():
            doc = self._table("lists").get(Query().conversation == conversation)
            return list(doc["task_ids"]) if doc else []
        return await self._read(get)

    async def set_last_list(self, conversation: str, task_ids: list[str]) -> None:
        await self._run(lambda: self._table("lists").upsert({"conversation": conversation, "task_ids": task_ids},
                                                             Query().conversation == conversation))

    # -- operator commands (python -m bot admin ...) ----------------------------------------------
    async def rebind(self, code: str, tenant_id: str, by: Actor, at: str) -> str | None:
        """Bind a municipality to another tenant; returns the previous tenant. Audited."""
        def change():
            doc = self._mtable(code).get(Query().code == code)
            previous = doc.get("tenant_id") if doc else None
            event = AuditEvent(code, "rebind", None, by, at, f"tenant:{previous or '-'}->{tenant_id}", tenant_id=tenant_id)
            self._append_audit(event)
            self._apply(event)
            return previous
        return await self._run(change)

    async def forget_user(self, user_id: str, pseudonym: Actor, by: Actor, at: str) -> int:
        """GDPR erasure: the person becomes `pseudonym` everywhere and loses their preferences.

        Returns how many audit events named them. The audit file is rewritten atomically, so a crash
        leaves either the old trail or the new one."""
        def erase():
            replaced = asdict(pseudonym)
            for code in self._codes_on_disk():
                municipalities = self._mtable(code)
                for doc in municipalities.all():
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
                        municipalities.update(changes, Query().code == doc["code"])
            self._table("registrations").update({"by": replaced}, Query().by.id == user_id)
            conversations = self._table("conversations")
            for doc in conversations.all():
                user = (doc.get("reference") or {}).get("user") or {}
                if user_id in (user.get("id"), user.get("aadObjectId")):
                    conversations.update({"reference": {**doc["reference"], "user": None}}, Query().key == doc["key"])
            self._table("preferences").remove(Query().user_id == user_id)
            count, lines, codes = 0, [], set()
            if self.audit_path.exists():
                for line in self.audit_path.read_text(encoding="utf-8").splitlines():
                    event = json.loads(line)
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
                    lines.append(json.dumps(event, ensure_ascii=False, separators=(",", ":")))
                AtomicJSONStorage(self.audit_path).write_text("".join(f"{line}\n" for line in lines))
            for code in sorted(codes):
                self._append_audit(AuditEvent(code, "forget", None, by, at, f"person:{pseudonym.id}"))
            return count
        return await self._run(erase)

    async def backup(self, target: Path) -> list[Path]:
        """A consistent copy of the data dir, taken under the same lock writers hold."""
        def copy():
            target.mkdir(parents=True, exist_ok=True)
            copied = []
            (target / "municipalities").mkdir(exist_ok=True)
            sources = [self.state_path, self.audit_path, *(self.municipalities_dir / f"{c}.json" for c in self._codes_on_disk())]
            for source in sources:
                if source.exists():
                    destination = target / source.relative_to(self.data_dir)
                    AtomicJSONStorage(destination).write_text(source.read_text(encoding="utf-8"))
                    copied.append(destination)
            return copied
        return await self._run(copy)

    # -- proactive messages: where they can go and which were sent ------------------------------------
    def conversation_known(self, key: str, fingerprint: tuple) -> bool:
        """True when this process last stored this conversation with the same fingerprint and it is active:
        then the caller need not even build the reference. A deactivation forgets the fingerprint."""
        return self._conversation_seen.get(key) == fingerprint

    async def remember_conversation(self, record: ConversationRecord, fingerprint: tuple | None = None) -> None:
        """Keep the newest reference for a conversation; a turn that changes nothing writes nothing."""
        fingerprint = fingerprint or (record.code, json.dumps(record.reference, sort_keys=True), record.language)
        if self._conversation_seen.get(record.key) == fingerprint:
            return

        def write():
            table = self._table("conversations")
            stored = table.get(Query().key == record.key)
            doc = asdict(record)
            if stored != doc:
                table.upsert(doc, Query().key == record.key)
        await self._run(write)
        self._conversation_seen[record.key] = fingerprint

    async def conversations(self) -> list[ConversationRecord]:
        def read():
            return [ConversationRecord(**d) for d in self._table("conversations").all() if d.get("active", True)]
        return await self._read(read)

    async def deactivate_conversation(self, key: str) -> None:
        """The bot was removed there (or the Connector answers 403/404): no more proactive messages."""
        self._conversation_seen.pop(key, None)
        await self._run(lambda: self._table("conversations").update({"active": False}, Query().key == key))

    async def sent_nudges(self) -> set[str]:
        return await self._read(lambda: {d["key"] for d in self._table("nudges").all() if d.get("state") == "sent"})

    async def claim_nudge(self, key: str, owner: str, at: str, stale_before: str) -> bool:
        """Take a nudge for sending, at most one sender at a time, across processes.

        A claim older than `stale_before` belonged to a sender that died; it may be taken over."""
        def claim():
            table = self._table("nudges")
            doc = table.get(Query().key == key)
            if doc and (doc["state"] == "sent" or doc["at"] >= stale_before):
                return False
            table.upsert({"key": key, "state": "claimed", "owner": owner, "at": at}, Query().key == key)
            return True
        return await self._run(claim)

    async def finish_nudge(self, key: str, owner: str, sent: bool, at: str) -> None:
        """Sent: never again. Not sent: the claim is dropped so a later sweep tries again."""
        def finish():
            table = self._table("nudges")
            if sent:
                table.upsert({"key": key, "state": "sent", "owner": owner, "at": at}, Query().key == key)
            else:
                table.remove((Query().key == key) & (Query().owner == owner) & (Query().state == "claimed"))
        await self._run(finish)

    async def wave_signature(self, wave_id: str) -> str | None:
        def read():
            doc = self._table("waves").get(Query().id == wave_id)
            return doc["signature"] if doc else None
        return await self._read(read)

    async def set_wave_signature(self, wave_id: str, signature: str) -> None:
        await self._run(lambda: self._table("waves").upsert({"id": wave_id, "signature": signature}, Query().id == wave_id))
