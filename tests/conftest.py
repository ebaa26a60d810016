from __future__ import annotations

import concurrent.futures
import contextlib
import importlib.util
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from content import load_content
from tests.harness import BotServer
from tests.postgres_server import PostgresServer, why_unavailable


@pytest.fixture(scope="session")
def content():
    return load_content()


@pytest.fixture(scope="session", autouse=True)
def _content_loaded_once_per_folder(content):
    """Every test server builds its own app, catalogs and store on its own data dir; the validated content of
    one content folder (immutable data) and the understander trained on it (Understander.of) are shared, as
    they would be by one process serving many conversations. A test with its own content folder loads it."""
    import bot.app
    from content.loader import CONTENT_ROOT

    def version(root: Path) -> tuple:
        """The folder as it is now: a test that edits a file between two servers gets the edited content."""
        return tuple(sorted((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in root.rglob("*") if f.is_file()))

    loaded = {version(CONTENT_ROOT.resolve()): content}
    original = bot.app.load_content

    def load(root=CONTENT_ROOT):
        key = version(Path(root).resolve())
        if key not in loaded:
            loaded[key] = original(root)
        return loaded[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bot.app, "load_content", load)
        yield


STORE_KINDS = ("tinydb", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A module marked both_stores runs each test that uses a store (`server`, `store_config`, or any fixture
    built on them) once on each store: the TinyDB data dir and PostgreSQL (ids tinydb, postgresql).
    @pytest.mark.tinydb_only keeps a test on the data dir alone (it is about the files themselves);
    @pytest.mark.pg_xfail("why") expects the PostgreSQL run to fail (strict), for a known PostgreSQL store bug."""
    definition = metafunc.definition
    if "store_kind" not in metafunc.fixturenames or definition.get_closest_marker("both_stores") is None:
        return
    if definition.get_closest_marker("tinydb_only") is not None:
        return  # store_kind's default: the data dir
    bug = definition.get_closest_marker("pg_xfail")
    marks = [pytest.mark.xfail(strict=True, reason=f"pg bug: {bug.args[0]}")] if bug else []
    metafunc.parametrize("store_kind", [pytest.param("tinydb", id="tinydb"),
                                        pytest.param("postgresql", id="postgresql", marks=marks)])


@pytest.fixture
def store_kind() -> str:
    """Which store the test's bot runs on: "tinydb" (the data dir, the default) or "postgresql" (both_stores
    modules get both, see pytest_generate_tests)."""
    return "tinydb"


@pytest.fixture
def store_config(request: pytest.FixtureRequest, store_kind: str) -> dict:
    """The Config fields that put a test's bot on its store: {} for the data dir, or a fresh database of its own
    (postgres_url) as database_url. Fixtures that build their own BotServer pass these in config_overrides."""
    assert store_kind in STORE_KINDS, store_kind
    if store_kind == "postgresql":
        return {"database_url": request.getfixturevalue("postgres_url")}
    return {}


@pytest.fixture
async def server(tmp_path, store_config):
    bot = BotServer(data_dir=tmp_path / "data", config_overrides=dict(store_config))
    await bot.start()
    yield bot
    await bot.close()


def _postgres_missing(message: str) -> None:
    """Skip the PostgreSQL tests on a machine without PostgreSQL; fail them where they must run. .ci/run sets
    BOT_REQUIRE_POSTGRES=1: there a skip would let CI stay green with the PostgreSQL tests never run."""
    if os.environ.get("BOT_REQUIRE_POSTGRES", "").strip().lower() in ("1", "true", "yes"):
        pytest.fail(f"{message} (BOT_REQUIRE_POSTGRES is set: the PostgreSQL tests must run)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL 15 server for the session (tests/postgres_server.py): 127.0.0.1 on a free port,
    user postgres, trust authentication, fsync off. Tests take a database of their own with postgres_url."""
    reason = why_unavailable()
    if reason:
        _postgres_missing(f"PostgreSQL 15 binaries not found (initdb, pg_ctl, postgres): {reason} — install Debian's "
                          "postgresql-15 to run the PostgreSQL tests")
    if importlib.util.find_spec("asyncpg") is None:
        _postgres_missing("asyncpg is not installed: pip install asyncpg==0.30.0 to run the PostgreSQL tests")
    server = PostgresServer().start()  # a binary that is there but fails is an error, never a skip
    try:
        yield server
    finally:
        server.stop()


_databases = itertools.count(1)


class _DatabasesAhead:
    """Fresh databases made one test ahead. CREATE DATABASE copies template0, ~0.3 s of the server's time on a
    slow disk, for every test on PostgreSQL; made in a worker thread while the previous test runs, it costs that
    test nothing. A database made ahead is named ahead_<n> (no test sees it: it is no t_ database) and becomes
    t_<n> when a test takes it, by a rename (instant), so each test still gets a database fresh from template0
    that no other test touched, and only its own t_ database exists while it runs."""

    def __init__(self, server: PostgresServer):
        self.server = server
        self.worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="database-ahead")
        self.ahead: tuple[int, concurrent.futures.Future] | None = None

    def _make_ahead(self) -> None:
        number = next(_databases)
        self.ahead = (number, self.worker.submit(self.server.create_database, f"ahead_{number}"))

    def take(self) -> tuple[str, str]:
        """(name, url) of a fresh database, and the next one started."""
        if self.ahead is None:
            self._make_ahead()
        number, made = self.ahead
        self.ahead = None
        made.result()  # a failure to create it fails this test, with PostgreSQL's message
        name = f"t_{number}"
        try:
            url = self.server.rename_database(f"ahead_{number}", name)
        except Exception:  # someone is connected to it after all (autovacuum): make this one now, plainly
            self.server.drop_database(f"ahead_{number}")
            url = self.server.create_database(name)
        self._make_ahead()
        return name, url

    def close(self) -> None:
        if self.ahead is not None:
            number, made = self.ahead
            with contextlib.suppress(Exception):
                made.result()
                self.server.drop_database(f"ahead_{number}")
        self.worker.shutdown(wait=True)


@pytest.fixture(scope="session")
def _fresh_databases(postgres: PostgresServer) -> Iterator[_DatabasesAhead]:
    supply = _DatabasesAhead(postgres)
    try:
        yield supply
    finally:
        supply.close()


@pytest.fixture
def postgres_url(postgres: PostgresServer, _fresh_databases: _DatabasesAhead) -> Iterator[str]:
    """A fresh, empty database for this test alone, as postgresql://postgres@127.0.0.1:<port>/t_<n>; dropped
    afterwards, with any connections the test left open ended (DROP DATABASE … WITH (FORCE))."""
    name, url = _fresh_databases.take()
    try:
        yield url
    finally:
        postgres.drop_database(name)
