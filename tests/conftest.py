from __future__ import annotations

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


@pytest.fixture
async def server(tmp_path):
    bot = BotServer(data_dir=tmp_path / "data")
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


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for this test alone, as postgresql://postgres@127.0.0.1:<port>/t_<n>; dropped
    afterwards, with any connections the test left open ended (DROP DATABASE … WITH (FORCE))."""
    name = f"t_{next(_databases)}"
    url = postgres.create_database(name)
    try:
        yield url
    finally:
        postgres.drop_database(name)
