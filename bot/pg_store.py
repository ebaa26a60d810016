"""The store in PostgreSQL (`BOT_DATABASE_URL=postgresql://…`): what lets several instances serve one bot.

Every change is one transaction. A change to a municipality locks its row (`select … for update`), appends its
events to `events` and writes the doc they add up to, so two instances marking at once queue on the row and
neither loses the other's mark. The kinds of change, their checks and effects are dialogs/events.py's, as in
the file store. A nudge is claimed with one conditional upsert: across instances, one claim wins.

Reads are one indexed query each; a municipality's read-only state is rebuilt only when its `seq` moved.
Nothing is kept on the instance that another instance could change, except which conversation references
this instance already stored (`conversation_known`, as in the file store: a stale "known" costs one write later).

asyncpg, not psycopg 3: the turn's few queries dominate the bot's CPU per activity with PostgreSQL, and
asyncpg's binary protocol and cached prepared statements cost less per query; its `copy_records_to_table`
also loads a data dir's whole trail in one COPY (admin migrate).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from bot.json_text import dumps as encode
from bot.json_text import loads as decode
from bot.pg_schema import MIGRATION_LOCK, MIGRATIONS
from bot.store import _CODE, LIST_LIMIT, _event, _event_dict, _pseudonymised
from dialogs import events
from dialogs.store import (
    Actor,
    AuditEvent,
    Changes,
    ConversationRecord,
    Decide,
    MunicipalityState,
    Registration,
    StoreUnavailable,
    T,
    ThreadContext,
    open_question,
    thawed,
)

log = logging.getLogger(__name__)

_RETRIES = 6  # a deadlock (two registrations moving scopes crosswise) or serialization failure is tried again
_PRUNE_EVERY = 60.0  # seconds between trims of the threads table to LIST_LIMIT
_INACTIVE = "conversation_inactive"  # the channel deactivations are announced on
_CHANGED = "store_changed"  # "<table>:<key>" for every row written (bot/pg_schema.py migration 3)
_MISS = object()
_CACHE_LIMIT = 20_000  # keys kept in memory (98 municipalities, their people, threads and registrations)
_RELISTEN = 10.0  # seconds between attempts to reconnect a lost listener
# A turn must not hang on a database that does not answer: connecting gives up after 5 s (asyncpg's default is
# 60), a statement after 10; either is "not saved" to the person, and /readyz says "database not writable".
# Errors that mean the database could not be reached or the connection broke: the change is not acknowledged.
_UNAVAILABLE = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError,
                TimeoutError, asyncpg.InsufficientResourcesError)


def _jsonb(value: Any) -> bytes:
    return b"\x01" + encode(value)  # jsonb's binary format: a version byte, then the text


def _from_jsonb(data: bytes) -> Any:
    return decode(data[1:])


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=_jsonb, decoder=_from_jsonb, schema="pg_catalog", format="binary")


async def _reset_connection(conn: asyncpg.Connection) -> None:
    """What a connection needs before the next borrower: only that no transaction is left open. asyncpg's default
    reset (advisory unlocks, CLOSE ALL, UNLISTEN, RESET ALL) is a round trip per query, and this store takes
    no session-level locks, listens to nothing and sets nothing for the session."""
    if conn.is_in_transaction():
        await conn.execute("rollback")


class PgStore(Changes):
    def __init__(self, url: str, min_connections: int = 2, max_connections: int = 10):
        self.url = url
        self._sizes = (min_connections, max_connections)
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self._states: dict[str, tuple[int, MunicipalityState]] = {}  # code -> (seq, state): rebuilt when seq moves
        self._conversation_seen: dict[str, tuple] = {}  # trusted only while the listener below is connected
        self._listener: asyncpg.Connection | None = None  # told when any instance deactivates a conversation
        # Reads kept while the listener hears every change: "<table>:<key>" -> value. A read stores its answer
        # only if no change to that key was heard while it ran (the generation), so a slow read never puts an
        # older value back after a newer change was announced.
        self._cache: dict[str, Any] = {}
        self._generation: dict[str, int] = {}
        self._epoch = 0  # bumped when everything is forgotten at once
        self._listen_tried = 0.0
        self._pruned = 0.0
        self.on_write: Callable[[float], None] | None = None

    # -- connections and transactions -----------------------------------------------------------------------
    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    try:
                        pool = await asyncpg.create_pool(self.url, min_size=self._sizes[0], max_size=self._sizes[1],
                                                         init=_init_connection, reset=_reset_connection,
                                                         timeout=5, command_timeout=10)
                    except _UNAVAILABLE as exc:
                        raise StoreUnavailable(f"PostgreSQL unreachable: {type(exc).__name__}: {exc}") from exc
                    async with pool.acquire() as conn:
                        await migrate(conn)
                    self._pool = pool
                    await self._listen()
        return self._pool

    async def _listen(self) -> None:
        """A connection of its own that hears every instance's changes: each written row (the read cache forgets
        it) and each deactivated conversation (this instance forgets it stored it, so the next message there
        stores it as active again). Without it (lost, or the database not reachable) nothing is trusted: reads go
        to the database and each turn writes its conversation (a no-op upsert)."""
        self._listen_tried = time.monotonic()
        try:
            conn = await asyncpg.connect(self.url, timeout=5)
            await conn.add_listener(_INACTIVE, self._heard_inactive)
            await conn.add_listener(_CHANGED, self._heard_change)
        except _UNAVAILABLE as exc:
            log.warning("conversation listener not connected", extra={"error": type(exc).__name__})
            return
        conn.add_termination_listener(self._listener_lost)
        self._forget_all()  # what was read while no one listened may have changed unheard
        self._listener = conn

    def _heard_inactive(self, conn: asyncpg.Connection, pid: int, channel: str, key: str) -> None:
        self._conversation_seen.pop(key, None)

    def _heard_change(self, conn: asyncpg.Connection, pid: int, channel: str, key: str) -> None:
        self._forget(key)

    def _listener_lost(self, conn: asyncpg.Connection) -> None:
        self._listener = None
        self._conversation_seen.clear()  # a deactivation may have gone unheard
        self._forget_all()  # and so may any change

    # -- the read cache -------------------------------------------------------------------------------------
    def _listening(self) -> bool:
        return self._listener is not None and not self._listener.is_closed()

    def _forget(self, key: str) -> None:
        self._generation[key] = self._generation.get(key, 0) + 1
        self._cache.pop(key, None)

    def _forget_all(self) -> None:
        self._epoch += 1  # every read under way now stores nothing, so the generations can start again
        self._cache.clear()
        self._generation.clear()

    def _version(self, key: str) -> tuple[int, int]:
        return (self._epoch, self._generation.get(key, 0))

    async def _read_through(self, key: str, query: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
        """A read answered from memory while every change to it is heard; otherwise from the database."""
        if not self._listening():
            return await self._read(query)
        value = self._cache.get(key, _MISS)
        if value is not _MISS:
            return value
        version = self._version(key)
        value = await self._read(query)
        if self._listening() and self._version(key) == version:
            if len(self._cache) >= _CACHE_LIMIT:
                self._forget_all()  # bounded; refilled by the reads that follow
            self._cache[key] = value
        return value

    async def _read(self, query: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
        try:
            async with (await self.pool()).acquire() as conn:
                return await query(conn)
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"PostgreSQL: {type(exc).__name__}: {exc}") from exc

    async def _transaction(self, work: Callable[[asyncpg.Connection], Awaitable[Any]],
                           touches: tuple[str, ...] | None = ()) -> Any:
        """`work` in one transaction, tried again after a deadlock or serialization failure. A connection lost
        before the commit was sent changed nothing; one lost during it may have committed (`maybe_saved`).

        `touches`: the cached keys it may change (None: any), forgotten before it starts and after it ends, so
        this instance reads its own writes at once (other instances hear of them through their listener)."""
        self._forget_touched(touches)
        try:
            return await self._transaction_once(work)
        finally:
            self._forget_touched(touches)

    def _forget_touched(self, touches: tuple[str, ...] | None) -> None:
        if touches is None:
            self._forget_all()
        for key in touches or ():
            self._forget(key)

    async def _transaction_once(self, work: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
        started = time.perf_counter()
        for attempt in range(_RETRIES):
            committing = False
            try:
                async with (await self.pool()).acquire() as conn:
                    transaction = conn.transaction()
                    await transaction.start()
                    try:
                        result = await work(conn)
                    except BaseException:
                        await transaction.rollback()
                        raise
                    committing = True
                    await transaction.commit()
                if self.on_write is not None:
                    self.on_write(time.perf_counter() - started)
                return result
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
                if attempt == _RETRIES - 1:
                    raise
                await asyncio.sleep(0.005 * 2 ** attempt)
            except _UNAVAILABLE as exc:
                raise StoreUnavailable(f"PostgreSQL: {type(exc).__name__}: {exc}", maybe_saved=committing) from exc
        raise AssertionError("unreachable")

    async def writable(self) -> bool:
        try:
            return await self._read(lambda conn: conn.fetchval("select not pg_is_in_recovery()"))
        except StoreUnavailable:
            return False

    async def checkpoint(self) -> int:
        """Nothing waits to be written here; now and then the threads table is trimmed to LIST_LIMIT, and expired
        exports and old greetings are deleted."""
        if self._pool is not None and time.monotonic() - self._pruned >= _PRUNE_EVERY:
            self._pruned = time.monotonic()

            async def prune(conn: asyncpg.Connection) -> None:
                await conn.execute("delete from threads where used < "
                                   "(select used from threads order by used desc offset $1 limit 1)", LIST_LIMIT - 1)
                await conn.execute("delete from exports where expires <= now()")  # names in them go with them
                await conn.execute("delete from greetings where at < now() - interval '1 day'")
            await self._transaction(prune, touches=None)  # threads trimmed
        return 0

    def close(self) -> None:
        if self._listener is not None:
            self._listener.terminate()
            self._listener = None
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None

    async def aclose(self) -> None:
        if self._listener is not None:
            listener, self._listener = self._listener, None
            await listener.close()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    # -- municipalities: the one read-modify-write ---------------------------------------------------------
    async def _locked_doc(self, conn: asyncpg.Connection, code: str) -> dict:
        row = await conn.fetchrow("select doc from municipalities where code = $1 for update", code)
        if row is None:
            await conn.execute("insert into municipalities (code, doc, seq) values ($1, $2, 0) on conflict do nothing",
                               code, events.empty(code))
            row = await conn.fetchrow("select doc from municipalities where code = $1 for update", code)
        return dict(row["doc"])

    async def _append(self, conn: asyncpg.Connection, doc: dict, event: AuditEvent) -> dict:
        """Append the event and return the doc after it (the caller writes the doc once, after its last event)."""
        events.check(event)
        seq = await conn.fetchval("insert into events (code, action, task_id, body) values ($1, $2, $3, $4) "
                                  "returning seq", event.code, event.action, event.task_id, _event_dict(event))
        new = {**events.apply(doc, event), "seq": seq}
        if event.action == "register" and event.scope:
            await conn.execute(
                "insert into registrations (scope, code, tenant_id, doc, seq) values ($1, $2, $3, $4, $5) "
                "on conflict (scope) do update set code = excluded.code, tenant_id = excluded.tenant_id, "
                "doc = excluded.doc, seq = excluded.seq", event.scope, event.code, event.tenant_id,
                {"by": _actor_dict(event.by), "at": event.at}, seq)
        return new

    @staticmethod
    async def _save(conn: asyncpg.Connection, doc: dict) -> None:
        await conn.execute("update municipalities set doc = $2, seq = $3, tenant_id = $4 where code = $1",
                           doc["code"], doc, doc.get("seq", 0), doc.get("tenant_id"))

    async def change(self, code: str, decide: Decide[T]) -> T:
        if not _CODE.fullmatch(code or ""):
            raise ValueError(f"not a municipality code: {code!r}")

        key = f"municipalities:{code}"
        known = self._cache.get(key) if self._listening() else None
        if known is not None:
            decided, result = _checked(code, decide(self._state(code, known)))
            if len(decided) == 1 and decided[0].action != "register" and await self._append_if_unchanged(known, decided[0]):
                return result

        async def work(conn: asyncpg.Connection) -> T:
            doc = await self._locked_doc(conn, code)
            decided, result = _checked(code, decide(events.state_of(doc, code)))
            if decided:
                for event in decided:
                    doc = await self._append(conn, doc, event)
                await self._save(conn, doc)
            return result
        return await self._transaction(work, touches=(key,))

    async def _append_if_unchanged(self, known: asyncpg.Record, event: AuditEvent) -> bool:
        """The common change (one event, decided on the state this instance last heard of) in one statement: the
        event is appended and the doc written only if the row still has the seq it was decided on; otherwise
        nothing happens and the change is decided again on the locked row. False also for a database that
        does not answer: the locked path then says so."""
        new = {**events.apply(dict(known["doc"]), event)}
        key = f"municipalities:{event.code}"
        self._forget(key)
        try:
            seq = await self._transaction_once(lambda conn: conn.fetchval(
                "with unchanged as (select code from municipalities where code = $1 and seq = $2 for update), "
                "appended as (insert into events (code, action, task_id, body) "
                "  select $1, $3, $4, $5 from unchanged returning seq) "
                "update municipalities m set doc = jsonb_set($6::jsonb, '{seq}', to_jsonb(appended.seq)), "
                "  seq = appended.seq, tenant_id = $7 from appended where m.code = $1 returning appended.seq",
                event.code, known["seq"], event.action, event.task_id, _event_dict(event), new, new.get("tenant_id")))
        except StoreUnavailable as exc:
            if exc.maybe_saved:
                raise
            return False
        finally:
            self._forget(key)
        return seq is not None

    async def municipality(self, code: str) -> MunicipalityState:
        row = await self._read_through(f"municipalities:{code}", lambda conn: conn.fetchrow(
            "select doc, seq from municipalities where code = $1", code))
        return self._state(code, row)

    def _state(self, code: str, row: asyncpg.Record | None) -> MunicipalityState:
        if row is None:
            return events.state_of(None, code)
        cached = self._states.get(code)
        if cached is not None and cached[0] == row["seq"]:
            return cached[1]  # MunicipalityState is read-only: shared by every reader until the seq moves
        state = events.state_of(row["doc"], code)
        self._states[code] = (row["seq"], state)
        return state

    async def all_municipalities(self) -> list[MunicipalityState]:
        rows = await self._read(lambda conn: conn.fetch(
            "select code, doc, seq from municipalities where tenant_id is not null order by code"))
        return [self._state(row["code"], row) for row in rows]

    async def audit(self, code: str, task_id: str | None = None, limit: int = 20) -> list[AuditEvent]:
        """The newest events history shows, from the index on (code, seq) or (code, task, seq)."""
        if task_id is None:
            rows = await self._read(lambda conn: conn.fetch(
                "select body from events where code = $1 and action = any($2::text[]) order by seq desc limit $3",
                code, events.shown_actions(), limit))
        else:
            rows = await self._read(lambda conn: conn.fetch(
                "select body from events where code = $1 and task_id = $2 and action = any($3::text[]) "
                "order by seq desc limit $4", code, task_id, events.shown_actions(), limit))
        return [_event(row["body"]) for row in rows]

    # -- registrations --------------------------------------------------------------------------------------
    async def registration(self, scope: str) -> Registration | None:
        row = await self._read_through(f"registrations:{scope}", lambda conn: conn.fetchrow(
            "select scope, code, tenant_id, doc from registrations where scope = $1", scope))
        return _registration(row) if row else None

    async def register(self, registration: Registration, conversation: str) -> str | None:
        async def work(conn: asyncpg.Connection) -> str | None:
            # Check and bind in one transaction, the municipality's row locked: two tenants racing cannot both win.
            doc = await self._locked_doc(conn, registration.code)
            bound = doc.get("tenant_id")
            if bound and bound != registration.tenant_id:
                return bound
            previous = await conn.fetchrow("select code, tenant_id from registrations where scope = $1 for update",
                                           registration.scope)
            event = AuditEvent(registration.code, "register", None, registration.by, registration.at, conversation,
                               scope=registration.scope, tenant_id=registration.tenant_id)
            await self._save(conn, await self._append(conn, doc, event))
            if previous and previous["code"] != registration.code:
                await self._release_if_unused(conn, previous["code"], previous["tenant_id"], registration)
            return None
        return await self._transaction(work, touches=None)  # a release may touch another

    async def _release_if_unused(self, conn: asyncpg.Connection, code: str, tenant_id: str | None,
                                 by: Registration) -> None:
        """A scope moved to another municipality: if its tenant has no other registration for the old one, the
        old one is free again (a mistaken "tilmeld" must not lock the real owner out). Audited."""
        if not tenant_id:
            return
        doc = await self._locked_doc(conn, code)
        users = await conn.fetchval("select count(*) from registrations where code = $1 and tenant_id = $2",
                                    code, tenant_id)
        if users or doc.get("tenant_id") != tenant_id:
            return
        event = AuditEvent(code, "rebind", None, by.by, by.at, f"released-by:{by.scope}", tenant_id="")
        await self._save(conn, await self._append(conn, doc, event))

    async def codes_for_tenant(self, tenant_id: str) -> list[str]:
        rows = await self._read(lambda conn: conn.fetch(
            "select distinct code from registrations where tenant_id = $1 order by code", tenant_id))
        return [row["code"] for row in rows]

    async def rebind(self, code: str, tenant_id: str, by: Actor, at: str) -> str | None:
        async def work(conn: asyncpg.Connection) -> str | None:
            doc = await self._locked_doc(conn, code)
            previous = doc.get("tenant_id")
            event = AuditEvent(code, "rebind", None, by, at, f"tenant:{previous or '-'}->{tenant_id}", tenant_id=tenant_id)
            await self._save(conn, await self._append(conn, doc, event))
            return previous
        return await self._transaction(work, touches=(f"municipalities:{code}",))

    # -- per-user and per-conversation memory ---------------------------------------------------------------
    async def language(self, user_id: str) -> str | None:
        return await self._read_through(f"preferences:{user_id}", lambda conn: conn.fetchval(
            "select language from preferences where user_id = $1", user_id))

    async def set_language(self, user_id: str, language: str) -> None:
        await self._transaction(lambda conn: conn.execute(
            "insert into preferences (user_id, language) values ($1, $2) "
            "on conflict (user_id) do update set language = excluded.language", user_id, language),
            touches=(f"preferences:{user_id}",))

    async def thread(self, conversation: str) -> ThreadContext:
        doc = await self._read_through(f"threads:{conversation}", lambda conn: conn.fetchval(
            "select doc from threads where conversation = $1", conversation))
        return _thread(doc)

    @staticmethod
    async def _put_thread(conn: asyncpg.Connection, conversation: str, new: ThreadContext) -> None:
        doc = {"task_ids": list(new.task_ids), "last_task": new.last_task, "pending": thawed(new.pending),
               "last_task_by": new.last_task_by, "last_task_at": new.last_task_at}
        await conn.execute(
            "insert into threads (conversation, doc) values ($1, $2) on conflict (conversation) do update "
            "set doc = excluded.doc, used = nextval('threads_used')", conversation, doc)

    async def update_thread(self, conversation: str, **changes: Any) -> None:
        current = await self.thread(conversation)
        if replace(current, **changes) == current:
            return  # "hvad skal vi nu?" twice, the same task named again: nothing to write

        async def work(conn: asyncpg.Connection) -> None:  # again, locked: another instance may have changed it
            now = _thread(await conn.fetchval("select doc from threads where conversation = $1 for update",
                                              conversation))
            new = replace(now, **changes)
            if new != now:
                await self._put_thread(conn, conversation, new)
        await self._transaction(work, touches=(f"threads:{conversation}",))

    async def take_pending(self, conversation: str, user: str, now: datetime, asked: str | None = None) -> dict | None:
        async def work(conn: asyncpg.Connection) -> dict | None:
            current = _thread(await conn.fetchval("select doc from threads where conversation = $1 for update",
                                                  conversation))
            pending = current.pending
            if pending is None or not open_question(pending, user, now):
                return None
            if asked is not None and pending.get("id") != asked:
                return None  # the "Ja" of an older question
            await self._put_thread(conn, conversation, replace(current, pending=None))
            return dict(pending)
        return await self._transaction(work, touches=(f"threads:{conversation}",))

    async def last_list(self, conversation: str) -> list[str]:
        return list((await self.thread(conversation)).task_ids)

    async def set_last_list(self, conversation: str, task_ids: list[str]) -> None:
        await self.update_thread(conversation, task_ids=tuple(task_ids))

    # -- proactive messages -----------------------------------------------------------------------------------
    def conversation_known(self, key: str, fingerprint: tuple) -> bool:
        """Stored by this instance with the same fingerprint, and no instance has deactivated it since (the
        listener would have said so)."""
        listening = self._listener is not None and not self._listener.is_closed()
        return listening and self._conversation_seen.get(key) == fingerprint

    async def remember_conversation(self, record: ConversationRecord, fingerprint: tuple | None = None) -> None:
        fingerprint = fingerprint or (record.code, encode(record.reference), record.language)
        if self.conversation_known(record.key, fingerprint):
            return
        if self._listener is None and self._pool is not None and time.monotonic() - self._listen_tried > _RELISTEN:
            await self._listen()
        doc = asdict(record)
        await self._transaction(lambda conn: conn.execute(
            "insert into conversations (key, doc, active) values ($1, $2, $3) on conflict (key) do update "
            "set doc = excluded.doc, active = excluded.active where conversations.doc is distinct from excluded.doc",
            record.key, doc, record.active))
        self._conversation_seen[record.key] = fingerprint

    async def conversations(self) -> list[ConversationRecord]:
        rows = await self._read(lambda conn: conn.fetch("select doc from conversations where active order by key"))
        return [ConversationRecord(**{**row["doc"], "active": True}) for row in rows]

    async def deactivate_conversation(self, key: str) -> None:
        self._conversation_seen.pop(key, None)

        async def work(conn: asyncpg.Connection) -> None:
            await conn.execute("update conversations set active = false, doc = jsonb_set(doc, '{active}', 'false') "
                               "where key = $1 and active", key)
            await conn.execute("select pg_notify($1, $2)", _INACTIVE, key)  # delivered to every listener at commit
        await self._transaction(work)

    async def sent_nudges(self) -> set[str]:
        rows = await self._read(lambda conn: conn.fetch("select key from nudges where state = 'sent'"))
        return {row["key"] for row in rows}

    async def claim_nudge(self, key: str, owner: str, at: str, stale_before: str) -> bool:
        """One statement, so one instance wins: a new claim, or the takeover of a claim older than `stale_before`
        (its sender died); never a nudge already sent."""
        claimed = await self._transaction(lambda conn: conn.fetchval(
            "insert into nudges (key, state, owner, at) values ($1, 'claimed', $2, $3) on conflict (key) do update "
            "set state = 'claimed', owner = excluded.owner, at = excluded.at "
            "where nudges.state <> 'sent' and nudges.at < $4 returning true", key, owner, at, stale_before))
        return bool(claimed)

    async def finish_nudge(self, key: str, owner: str, sent: bool, at: str) -> None:
        if sent:
            await self._transaction(lambda conn: conn.execute(
                "insert into nudges (key, state, owner, at) values ($1, 'sent', $2, $3) on conflict (key) do update "
                "set state = 'sent', owner = excluded.owner, at = excluded.at", key, owner, at))
            return
        await self._transaction(lambda conn: conn.execute(
            "delete from nudges where key = $1 and owner = $2 and state = 'claimed'", key, owner))

    async def wave_signature(self, wave_id: str) -> str | None:
        return await self._read(lambda conn: conn.fetchval("select signature from waves where id = $1", wave_id))

    async def set_wave_signature(self, wave_id: str, signature: str) -> None:
        await self._transaction(lambda conn: conn.execute(
            "insert into waves (id, signature) values ($1, $2) on conflict (id) do update set signature = excluded.signature",
            wave_id, signature))

    async def claim_greeting(self, conversation: str, now: datetime, quiet: timedelta) -> bool:
        """One statement, so one instance greets: a first greeting, or one after `quiet` has passed."""
        claimed = await self._transaction(lambda conn: conn.fetchval(
            "insert into greetings (conversation, at) values ($1, $2) on conflict (conversation) do update "
            "set at = excluded.at where greetings.at <= $3 returning true", conversation, now, now - quiet))
        return bool(claimed)

    # -- export links, shared by every instance (the download may reach another one) ---------------------------
    async def put_export(self, token: str, name: str, data: bytes, ttl: timedelta) -> None:
        expires = datetime.now(UTC) + ttl
        await self._transaction(lambda conn: conn.execute(
            "insert into exports (token, name, data, expires) values ($1, $2, $3, $4)", token, name, data, expires))

    async def get_export(self, token: str) -> tuple[str, bytes] | None:
        row = await self._read(lambda conn: conn.fetchrow(
            "select name, data from exports where token = $1 and expires > now()", token))
        return (row["name"], bytes(row["data"])) if row else None

    # -- operator commands ------------------------------------------------------------------------------------
    async def backup(self, target: Path) -> list[Path]:
        from bot.migrate import backup_postgresql
        return await backup_postgresql(self, target)

    async def forget_user(self, user_id: str, pseudonym: Actor, by: Actor, at: str) -> int:
        """GDPR erasure in one transaction: the person becomes `pseudonym` in the trail and the state, and loses
        their preferences. Returns how many events named them."""
        replaced = _actor_dict(pseudonym)
        like = f'%"{user_id}"%'

        async def work(conn: asyncpg.Connection) -> int:
            count, codes = 0, set()
            for row in await conn.fetch("select seq, code, body from events where body::text like $1 for update", like):
                body = _pseudonymised(row["body"], user_id, replaced)
                if body != row["body"]:
                    count += 1
                    codes.add(row["code"])
                    await conn.execute("update events set body = $2 where seq = $1", row["seq"], body)
            for row in await conn.fetch("select code, doc from municipalities where doc::text like $1 for update", like):
                await conn.execute("update municipalities set doc = $2 where code = $1", row["code"],
                                   _pseudonymised(row["doc"], user_id, replaced))
            await conn.execute("update registrations set doc = jsonb_set(doc, '{by}', $2) where doc->'by'->>'id' = $1",
                               user_id, replaced)
            for row in await conn.fetch("select key, doc from conversations where doc::text like $1 for update", like):
                reference = row["doc"].get("reference") or {}
                user = reference.get("user") or {}
                if user_id in (user.get("id"), user.get("aadObjectId")):
                    await conn.execute("update conversations set doc = $2 where key = $1", row["key"],
                                       {**row["doc"], "reference": {**reference, "user": None}})
            await conn.execute("delete from preferences where user_id = $1", user_id)
            # Exports are CSVs with people's names, kept 15 minutes for a download: all go (one can export again).
            await conn.execute("delete from exports")
            # A change the bot asked them about, or a question about them, is forgotten with them.
            for row in await conn.fetch("select conversation, doc from threads where doc::text like $1 for update", like):
                doc = {**row["doc"], "pending": None}
                if doc.get("last_task_by") == user_id:
                    doc.update(last_task_by=None, last_task_at=None)
                await conn.execute("update threads set doc = $2 where conversation = $1", row["conversation"], doc)
            for code in sorted(codes):
                doc = await self._locked_doc(conn, code)
                await self._save(conn, await self._append(
                    conn, doc, AuditEvent(code, "forget", None, by, at, f"person:{pseudonym.id}")))
            return count
        return await self._transaction(work, touches=None)


def _checked(code: str, decision: tuple[Any, T]) -> tuple[list[AuditEvent], T]:
    """A decision's events, plain JSON in their details, each checked before any is written."""
    decided, result = decision
    decided = [replace(e, details=thawed(e.details)) if e.details is not None else e for e in decided]
    for event in decided:
        if event.code != code:
            raise ValueError(f"an event for {event.code} in a change of {code}")
        events.check(event)
    return decided, result


def _actor_dict(actor: Actor) -> dict:
    return {"id": actor.id, "name": actor.name}


def _registration(row: asyncpg.Record) -> Registration:
    by = row["doc"].get("by") or {}
    return Registration(scope=row["scope"], code=row["code"], tenant_id=row["tenant_id"],
                        by=Actor(by.get("id", ""), by.get("name", "")), at=row["doc"].get("at", ""))


def _thread(doc: dict | None) -> ThreadContext:
    if not doc:
        return ThreadContext()
    return ThreadContext(tuple(doc.get("task_ids") or ()), doc.get("last_task"), thawed(doc.get("pending")),
                         doc.get("last_task_by"), doc.get("last_task_at"))


async def migrate(conn: asyncpg.Connection) -> int:
    """Bring the schema up to date (bot/pg_schema.py); returns the version. Safe to run from several instances."""
    async with conn.transaction():
        await conn.execute("select pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute("create table if not exists schema_migrations (version int primary key, "
                           "applied_at timestamptz not null default now())")
        done = await conn.fetchval("select coalesce(max(version), 0) from schema_migrations")
        for version, sql in enumerate(MIGRATIONS, start=1):
            if version > done:
                await conn.execute(sql)
                await conn.execute("insert into schema_migrations (version) values ($1)", version)
                log.info("database migrated", extra={"version": version})
    return len(MIGRATIONS)
