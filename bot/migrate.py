"""Moving a bot's memory between the two stores, and proving nothing was lost.

`admin migrate --to postgresql://…` copies a data dir into an empty database: the audit trail line by line
(line n becomes event n), the state it adds up to, and the memory beside it (conversations, nudges, waves,
preferences, threads). Then it verifies: the same events in the same order (a digest of each side), and every
municipality's state in the database equal both to the data dir's and to its events folded afresh.

`admin backup` with PostgreSQL writes a data dir: the trail as audit.jsonl and the memory beside it, from one
consistent read. A bot can run on that data dir as it is (it rebuilds the state from the trail once), and
`admin migrate` loads it into a database again.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import asyncpg

from bot.json_file import write_atomically
from bot.json_text import dumps as encode
from bot.json_text import loads as decode
from bot.pg_store import PgStore
from bot.store import OWN_FILES, TinyStore, _complete_lines, _event
from dialogs import events

BATCH = 10_000  # events per COPY: a data dir's trail of a million lines never sits in memory whole


class MigrationError(ValueError):
    """The target is not empty, or the copy does not verify: the message says which and where."""


def _canonical(event: dict) -> bytes:
    """An event's text independent of key order (jsonb keeps its own), for comparing the two trails."""
    return json.dumps(event, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def _rows(store: TinyStore, table: str) -> list[dict]:
    return [dict(d) for d in store._table(table).all()]


async def to_postgresql(source: TinyStore, target: PgStore) -> str:
    await source.checkpoint()  # every municipality file holds every acknowledged mark
    pool = await target.pool()
    await source._file_lock.acquire_async()  # nothing changes the data dir while it is copied
    try:
        source._freshness.expire()
        async with pool.acquire() as conn, conn.transaction():
            for table in ("events", "municipalities", "registrations", "conversations", "nudges", "threads"):
                if await conn.fetchval(f"select exists (select 1 from {table})"):
                    raise MigrationError(f"the database already holds {table}: migrate into an empty database")
            lines, digest = await _copy_trail(conn, source.audit_path)
            docs = {code: source._municipality_doc(code) for code in source._codes_on_disk()}
            await conn.executemany(
                "insert into municipalities (code, doc, seq, tenant_id) values ($1, $2, $3, $4)",
                [(code, {k: v for k, v in doc.items() if k != "history"}, doc.get("seq", 0), doc.get("tenant_id"))
                 for code, doc in docs.items() if doc])
            await conn.executemany(
                "insert into registrations (scope, code, tenant_id, doc, seq) values ($1, $2, $3, $4, $5)",
                [(r["scope"], r["code"], r.get("tenant_id"), {"by": r["by"], "at": r["at"]}, r.get("seq", 0))
                 for r in _rows(source, "registrations")])
            await _copy_memory(conn, source)
        return await _verify(source, target, lines, digest, docs)
    finally:
        source._file_lock.release()


async def _copy_trail(conn: asyncpg.Connection, path: Path) -> tuple[int, str]:
    digest, batch, number = hashlib.sha256(), [], 0
    for number, line in enumerate(_complete_lines(path), start=1):
        event = decode(line)
        events.check(_event(event))
        digest.update(_canonical(event))
        batch.append((number, event["code"], event["action"], event.get("task_id"), event))
        if len(batch) >= BATCH:
            await conn.copy_records_to_table("events", records=batch, columns=["seq", "code", "action", "task_id", "body"])
            batch = []
    if batch:
        await conn.copy_records_to_table("events", records=batch, columns=["seq", "code", "action", "task_id", "body"])
    await conn.execute("select setval('events_seq_seq', greatest($1, 1), $1 > 0)", number)
    return number, digest.hexdigest()


async def _copy_memory(conn: asyncpg.Connection, source: TinyStore) -> None:
    await conn.executemany("insert into conversations (key, doc, active) values ($1, $2, $3)",
                           [(d["key"], d, d.get("active", True)) for d in _rows(source, "conversations")])
    await conn.executemany("insert into nudges (key, state, owner, at) values ($1, $2, $3, $4)",
                           [(d["key"], d["state"], d["owner"], d["at"]) for d in _rows(source, "nudges")])
    await conn.executemany("insert into waves (id, signature) values ($1, $2)",
                           [(d["id"], d["signature"]) for d in _rows(source, "waves")])
    await conn.executemany("insert into preferences (user_id, language) values ($1, $2)",
                           [(d["user_id"], d["language"]) for d in _rows(source, "preferences")])
    # Threads in the order they were last used (TinyDB ids grow with use): the newest stay when trimmed.
    threads = sorted(source._table("lists").all(), key=lambda d: d.doc_id)
    await conn.executemany("insert into threads (conversation, doc) values ($1, $2)",
                           [(d["conversation"], {k: v for k, v in d.items() if k != "conversation"}) for d in threads])


async def _verify(source: TinyStore, target: PgStore, lines: int, digest: str, docs: dict[str, dict | None]) -> str:
    """The trail byte-for-byte in meaning, and every state three ways: data dir, database, fold of the events."""
    pool = await target.pool()
    copied = hashlib.sha256()
    folded: dict[str, dict] = {}
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        count = 0
        async for row in conn.cursor("select seq, code, body from events order by seq", prefetch=BATCH):
            count += 1
            copied.update(_canonical(row["body"]))
            code = row["code"]
            folded[code] = events.apply(folded.get(code) or events.empty(code), _event(row["body"]))
        stored = {row["code"]: row["doc"] for row in await conn.fetch("select code, doc from municipalities")}
    if count != lines or copied.hexdigest() != digest:
        raise MigrationError(f"the trail does not verify: {lines} lines in the data dir, {count} events copied")
    for code, doc in docs.items():
        if doc is None:
            continue
        here, there = events.state_of(doc, code), events.state_of(stored.get(code), code)
        if here != there or events.state_of(folded.get(code), code) != there:
            raise MigrationError(f"municipality {code}: the state in the database differs from the data dir's")
    return (f"copied {lines} audit events and {len(stored)} municipalities' state; verified: the same events in "
            f"the same order (sha256 {digest[:16]}…), and each state equal to the data dir's and to its events replayed")


async def backup_postgresql(store: PgStore, target: Path) -> list[Path]:
    """A data dir from one consistent read of the database (see the module's docstring)."""
    pool = await store.pool()
    target.mkdir(parents=True, exist_ok=True)
    if (target / "audit.jsonl").exists():
        raise MigrationError(f"{target} already holds a data dir: back up into a new directory")
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        trail = target / "audit.jsonl.partial"
        with trail.open("wb") as out:
            async for row in conn.cursor("select body from events order by seq", prefetch=BATCH):
                out.write(encode(row["body"]) + b"\n")
        memory = {
            "conversations": [r["doc"] for r in await conn.fetch("select doc from conversations order by key")],
            "nudges": [dict(r) for r in await conn.fetch("select key, state, owner, at from nudges order by key")],
            "lists": [{"conversation": r["conversation"], **r["doc"]}
                      for r in await conn.fetch("select conversation, doc from threads order by used")],
            "preferences": [dict(r) for r in await conn.fetch("select user_id, language from preferences")],
            "waves": [dict(r) for r in await conn.fetch("select id, signature from waves")],
        }
    write_atomically(target / "audit.jsonl", trail.read_bytes(), sync=True)
    trail.unlink()
    written = [target / "audit.jsonl"]
    state: dict[str, Any] = {}
    for table, docs in memory.items():
        data = {table: {str(i): doc for i, doc in enumerate(docs, start=1)}}
        if table in OWN_FILES:
            write_atomically(target / f"{table}.json", encode(data), sync=True)
            written.append(target / f"{table}.json")
        else:
            state.update(data)
    write_atomically(target / "state.json", encode(state), sync=True)  # registrations: rebuilt from the trail
    written.append(target / "state.json")
    return written
