"""The throwaway PostgreSQL server the PostgreSQL tests run against (tests/postgres_server.py, the postgres and
postgres_url fixtures in tests/conftest.py): the version production runs, a database of its own per test,
and reachable from this machine's loopback address only (trust authentication: no password)."""
from __future__ import annotations

import contextlib
import socket
from typing import Any

from tests.postgres_server import PostgresServer


async def _connect(url: str) -> Any:
    # asyncpg imported here, not at the top: without it the postgres fixture skips (or fails under
    # BOT_REQUIRE_POSTGRES) with a clear message, instead of this module failing to import.
    import asyncpg

    return await asyncpg.connect(url)


async def test_the_server_is_postgresql_15(postgres_url):
    connection = await _connect(postgres_url)
    try:
        version = await connection.fetchval("select version()")
        number = int(await connection.fetchval("show server_version_num"))
    finally:
        await connection.close()
    assert version.startswith("PostgreSQL 15."), version
    assert number // 10000 == 15, number


async def _user_tables(url: str) -> list[str]:
    connection = await _connect(url)
    try:
        rows = await connection.fetch("select table_schema || '.' || table_name from information_schema.tables "
                                      "where table_schema not in ('pg_catalog', 'information_schema')")
    finally:
        await connection.close()
    return [row[0] for row in rows]


async def test_each_test_gets_a_fresh_empty_database_of_its_own(postgres: PostgresServer, postgres_url):
    assert await _user_tables(postgres_url) == []
    connection = await _connect(postgres_url)
    try:
        await connection.execute("create table conversation (id text primary key)")
        # Only this test's database exists now: the earlier tests' ones were dropped after them.
        ours = await connection.fetch("select datname from pg_database where datname like 't\\_%'")
    finally:
        await connection.close()
    assert [row[0] for row in ours] == [postgres_url.rsplit("/", 1)[1]]

    other = postgres.create_database("t_other")  # what postgres_url does for the next test
    try:
        assert other != postgres_url
        assert await _user_tables(other) == []
        assert await _user_tables(postgres_url) == ["public.conversation"]
    finally:
        postgres.drop_database("t_other")


def _other_local_addresses() -> set[str]:
    """Addresses of this machine other than 127.0.0.1: 127.0.0.2 (all of 127/8 is local on Linux, so a server on
    the wildcard address answers there), the host name's addresses, the address of the default route."""
    found = {"127.0.0.2"}
    with contextlib.suppress(OSError):
        found.update(socket.gethostbyname_ex(socket.gethostname())[2])
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # UDP connect sends nothing: it picks the outgoing interface's address
        found.add(probe.getsockname()[0])
    return found - {"127.0.0.1", "0.0.0.0"}


async def test_the_server_listens_on_127_0_0_1_only(postgres: PostgresServer, postgres_url):
    connection = await _connect(postgres_url)
    try:
        assert await connection.fetchval("show listen_addresses") == "127.0.0.1"
    finally:
        await connection.close()
    with socket.create_connection(("127.0.0.1", postgres.port), timeout=5):
        pass  # the port is open where it should be: the refusals below are not a closed port
    for address in [*sorted(_other_local_addresses()), "::1"]:
        try:
            with socket.create_connection((address, postgres.port), timeout=2):
                raise AssertionError(f"the server answers on {address}:{postgres.port}, not on 127.0.0.1 only")
        except OSError:
            pass  # refused (or no IPv6): not listening there
