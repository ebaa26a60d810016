"""PostgreSQL for the bench: a throwaway PostgreSQL 15 server on loopback (tests/postgres_server.py), databases
filled from a data dir, and the server's CPU.

The server runs with fsync on: the bot on the data dir fdatasyncs every mark, so a PostgreSQL that skipped the
flush of each commit would be timed doing less than the file store. Everything else is the test fixture's
configuration (shared_buffers 64 MB, loopback only, trust authentication for the postgres user).

`load` fills an empty database the way `admin migrate` does (trail line n becomes event n, every
municipality's state without its history index, the registrations), by COPY and without migrate's
verification, so a million events load in seconds rather than minutes; `check_load` compares it with
bot/migrate.py's `to_postgresql` on a small data dir, so the figures are about what the bot's own migration
would produce.
"""
from __future__ import annotations

import itertools
import os
import shutil
import time
from pathlib import Path

from bench.servers import cpu_ms

BATCH = 20_000  # events per COPY


class Postgres:
    """One server for the whole bench run: `start`, `database` as often as needed, `stop` (always, in a finally)."""

    def __init__(self):
        self.server = None
        self._names = itertools.count(1)

    def start(self) -> Postgres:
        from tests.postgres_server import PostgresServer

        server = PostgresServer(fsync=True)
        self.server = server  # before start(): a failed start is stopped by stop()
        server.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    @property
    def version(self) -> str:
        import subprocess
        return subprocess.run(["postgres", "--version"], capture_output=True, text=True).stdout.strip()

    def database(self, prefix: str = "bench", template: str | None = None) -> tuple[str, str]:
        """A new database (name, url): empty, or a copy of `template` (which must have no clients)."""
        name = f"{prefix}_{next(self._names)}"
        if template:
            self.server._execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            return name, self.server.url(name)
        return name, self.server.create_database(name)

    def drop(self, name: str) -> None:
        self.server.drop_database(name)

    def postmaster_pid(self) -> int:
        return int((self.server.data / "postmaster.pid").read_text().split("\n", 1)[0])

    def cpu_ms(self) -> float:
        """CPU of the whole server so far, in ms: the postmaster, its live children (a backend per connection,
        the checkpointer, the WAL writer, …) and the children it already reaped (cutime + cstime)."""
        master = self.postmaster_pid()
        stat = Path(f"/proc/{master}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        total = (int(fields[13]) + int(fields[14])) * 1000 / os.sysconf("SC_CLK_TCK")  # cutime, cstime
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(entry) == master or int(stat[stat.rindex(")") + 2:].split()[1]) == master:
                    total += cpu_ms(int(entry))
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
        return total


async def _raw_connection(url: str):
    """A connection that passes jsonb through as the bytes of the trail's lines (no decode and re-encode)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    await conn.set_type_codec("jsonb", encoder=lambda raw: b"\x01" + raw, decoder=lambda data: data[1:],
                              schema="pg_catalog", format="binary")
    return conn


async def load(data_dir: Path, url: str) -> float:
    """Fill the empty database at `url` from a data dir TinyStore has opened and closed (so its state files
    reflect the whole trail); returns the seconds it took. The schema is the store's own (PgStore migrates it)."""
    from bot.json_text import dumps as encode
    from bot.json_text import loads as decode
    from bot.pg_store import PgStore
    from bot.store import _doc_in

    started = time.perf_counter()
    store = PgStore(url)
    await store.pool()  # creates the schema
    await store.aclose()
    conn = await _raw_connection(url)
    try:
        async with conn.transaction():
            columns = ["seq", "code", "action", "task_id", "body"]
            batch, number = [], 0
            audit = data_dir / "audit.jsonl"
            if audit.exists():
                with audit.open("rb") as fh:
                    for number, line in enumerate(fh, start=1):
                        event = decode(line)
                        batch.append((number, event["code"], event["action"], event.get("task_id"), line.rstrip(b"\n")))
                        if len(batch) >= BATCH:
                            await conn.copy_records_to_table("events", records=batch, columns=columns)
                            batch = []
            if batch:
                await conn.copy_records_to_table("events", records=batch, columns=columns)
            await conn.execute("select setval('events_seq_seq', greatest($1, 1), $1 > 0)", number)
            rows = []
            for path in sorted((data_dir / "municipalities").glob("*.json")):
                doc = _doc_in(decode(path.read_bytes()), path.stem)
                if doc:
                    rows.append((path.stem, encode({k: v for k, v in doc.items() if k != "history"}),
                                 doc.get("seq", 0), doc.get("tenant_id")))
            await conn.executemany("insert into municipalities (code, doc, seq, tenant_id) values ($1, $2, $3, $4)", rows)
            state = decode((data_dir / "state.json").read_bytes()) if (data_dir / "state.json").exists() else {}
            await conn.executemany(
                "insert into registrations (scope, code, tenant_id, doc, seq) values ($1, $2, $3, $4, $5)",
                [(r["scope"], r["code"], r.get("tenant_id"), encode({"by": r["by"], "at": r["at"]}), r.get("seq", 0))
                 for r in (state.get("registrations") or {}).values()])
        await conn.execute("analyze")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def _tables(url: str) -> dict[str, list]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return {
            "events": [tuple(r) for r in await conn.fetch(
                "select seq, code, action, task_id, body::text from events order by seq")],
            "municipalities": [tuple(r) for r in await conn.fetch(
                "select code, doc::text, seq, tenant_id from municipalities order by code")],
            "registrations": [tuple(r) for r in await conn.fetch(
                "select scope, code, tenant_id, doc::text, seq from registrations order by scope")],
            "next seq": [await conn.fetchval("select nextval('events_seq_seq')")],
        }
    finally:
        await conn.close()


async def check_load(pg: Postgres, data_dir: Path, workdir: Path) -> None:
    """`load` and bot/migrate.py's `to_postgresql` give the same events, states and registrations."""
    from bot.migrate import to_postgresql
    from bot.pg_store import PgStore
    from bot.store import TinyStore

    copy = workdir / "load-check"
    shutil.copytree(data_dir, copy)
    mine, mine_url = pg.database("loadcheck")
    theirs, theirs_url = pg.database("loadcheck")
    try:
        await load(copy, mine_url)
        source, target = TinyStore(copy), PgStore(theirs_url)
        try:
            await to_postgresql(source, target)
        finally:
            source.close()
            await target.aclose()
        ours, migrated = await _tables(mine_url), await _tables(theirs_url)
        for table, rows in migrated.items():
            if ours[table] != rows:
                raise RuntimeError(f"bench/pg.py load() and admin migrate differ in {table}: the PostgreSQL figures "
                                   "would be about another database than the bot's migration makes")
    finally:
        pg.drop(mine)
        pg.drop(theirs)
        shutil.rmtree(copy, ignore_errors=True)
