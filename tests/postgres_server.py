"""A throwaway PostgreSQL 15 server for the tests: initdb into a temp dir, pg_ctl start on a free loopback port,
one database per test, pg_ctl stop and the dir removed at the end.

It uses the server binaries on the PATH (Debian's postgresql-15: initdb, pg_ctl, postgres), never a server the
machine already runs, so the tests cannot touch real data and need no password. The Python side (asyncpg) is
imported only when a database is created, so the rest of the suite runs without it.
"""
from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from tests.harness import free_port

MAJOR = 15  # the version infra/azure.bicep deploys (flexible server, version '15')
BINARIES = ("initdb", "pg_ctl", "postgres")
PREFIX = "bot-pg-"  # the temp dirs' names: how a later session recognises a dir an earlier one left behind
OWNER_FILE = "owner.pid"  # the test process that started the server: a dead owner means an orphan
START_TIMEOUT = 30  # seconds for pg_ctl -w; the server is up in well under a second


def postgres_binaries() -> str | None:
    """The directory of initdb when initdb, pg_ctl and postgres are all on the PATH, else None."""
    paths = [shutil.which(name) for name in BINARIES]
    return os.path.dirname(paths[0]) if all(paths) and paths[0] else None


def why_unavailable() -> str | None:
    """Why this machine cannot run the test server, in words; None when it can."""
    missing = [name for name in BINARIES if shutil.which(name) is None]
    if missing:
        return f"{', '.join(missing)} not on the PATH ({os.environ.get('PATH', '')})"
    try:
        version = subprocess.run(["postgres", "--version"], capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError) as error:
        return f"`postgres --version` failed: {error}"
    found = re.search(r"\b(\d+)\.\d+", version)
    if not found or int(found.group(1)) != MAJOR:
        return f"postgres on the PATH is {version.strip() or 'of an unknown version'}, not PostgreSQL {MAJOR}"
    if os.geteuid() == 0:
        # initdb and postgres refuse to run as root; as root we run them as the postgres user instead.
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run initdb and postgres as (they refuse root)"
    return None


def _run_async(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to completion from sync code, also when called from inside a running event loop (an
    async test): in a thread with its own loop. asyncio.run in this thread would fail under a running loop,
    and would also reset the thread's current event loop, which pytest-asyncio may have set for the test."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    # A zombie has exited: the postmaster is reparented away from us (pg_ctl's shell exits), and an init that
    # is slow to reap must not make us wait for a process that is already gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _kill_postmaster(data: Path) -> None:
    """Stop the server of a data dir by the pid in postmaster.pid, when pg_ctl could not: SIGQUIT (immediate
    shutdown, the children exit too), then SIGKILL. Only a process whose command line names this data dir:
    a stale pid file may hold a pid the system has since given to something else."""
    try:
        pid = int((data / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        cmdline = None  # gone, or no /proc: then the pid alone has to do
    if cmdline is not None and str(data) not in cmdline:
        return
    for sig, wait in ((signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not _alive(pid):
            return


def reap_orphans(root: str | None = None) -> list[Path]:
    """Servers and dirs left by an earlier test session that died before its atexit ran (SIGKILL, a killed
    CI job): stopped and removed, so a crash never leaves a postgres running for good. A dir whose owner
    process still runs (another session, a parallel worker) is left alone."""
    reaped = []
    for folder in Path(root or tempfile.gettempdir()).glob(f"{PREFIX}*"):
        try:
            owner = int((folder / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # not one of ours, or still being set up
        if _alive(owner):
            continue
        _kill_postmaster(folder / "data")
        shutil.rmtree(folder, ignore_errors=True)
        reaped.append(folder)
    return reaped


class PostgresServer:
    """One PostgreSQL server in a temp dir, on 127.0.0.1 only, trust authentication for the user postgres.

    fsync is off by default (and initdb runs with --no-sync): the server is thrown away after the session, so
    nothing has to survive an OS crash or power loss, the only thing fsync protects against. It saves a little
    here (about 0.15 s at start, a little per CREATE DATABASE) and much more on slow or shared disks. It does
    not weaken a test that kills the *bot* with SIGKILL: PostgreSQL keeps running, and what it committed is in
    its WAL in the OS page cache, which a killed client cannot take with it (nor could a killed postgres).
    fsync=True is for a test of durability across a crash of the machine, or one that times commits.
    """

    HOST = "127.0.0.1"  # loopback only, never a parameter: trust authentication must not be reachable from outside

    def __init__(self, *, fsync: bool = False, user: str = "postgres"):
        self.fsync = fsync
        self.host = self.HOST
        self.user = user
        self.port = 0
        self.dir: Path | None = None
        self.locale = ""  # the initdb locale option that worked
        self.start_seconds = 0.0  # initdb + pg_ctl start, for the curious
        self._run_as: tuple[int, int] | None = None  # (uid, gid) of the postgres user when we are root

    # -- paths ------------------------------------------------------------------------------------------------

    @property
    def data(self) -> Path:
        assert self.dir is not None, "not started"
        return self.dir / "data"

    @property
    def logfile(self) -> Path:
        assert self.dir is not None, "not started"
        return self.dir / "log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def log(self, last: int = 40) -> str:
        """The server log's last lines: what a failed start or a failing test wants to show."""
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-last:])
        except (OSError, AssertionError):
            return ""

    # -- running the binaries -----------------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        # PGDATA, PGPORT, PGHOST, PGOPTIONS … from the caller's shell must not point the binaries elsewhere.
        return {key: value for key, value in os.environ.items() if not key.startswith("PG")}

    def _run(self, *args: str, timeout: float = 60, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """A server binary, as the postgres user when we are root (initdb and postgres refuse root; subprocess's
        user/group, not runuser or su, so no PAM, no util-linux needed, and root's groups dropped)."""
        extra: dict[str, Any] = {}
        if self._run_as:
            uid, gid = self._run_as
            extra = {"user": uid, "group": gid, "extra_groups": []}
        return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=self._env(),
                              cwd=cwd or self.dir, check=False, **extra)

    # -- lifecycle ------------------------------------------------------------------------------------------------

    def start(self) -> PostgresServer:
        reason = why_unavailable()
        if reason:
            raise RuntimeError(f"PostgreSQL {MAJOR} unavailable: {reason}")
        began = time.monotonic()
        reap_orphans()
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            self._run_as = (entry.pw_uid, entry.pw_gid)
        self.dir = Path(tempfile.mkdtemp(prefix=PREFIX))  # 0700
        atexit.register(self.stop)  # and stop() at once on a failed start, below: no dir or server left behind
        try:
            (self.dir / OWNER_FILE).write_text(str(os.getpid()))
            if self._run_as:
                # The postgres user writes the data dir, the log and the socket here; root's 0700 dir would stop it.
                os.chown(self.dir, *self._run_as)
                probe = self._run("test", "-w", str(self.dir), "-a", "-x", str(self.dir), cwd=Path("/"))
                if probe.returncode != 0:
                    raise RuntimeError(f"the postgres user cannot write {self.dir}: a parent of the temp dir "
                                       f"({tempfile.gettempdir()}) is closed to it; set TMPDIR to e.g. /tmp")
            self._initdb()
            self._pg_ctl_start()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def _initdb(self) -> None:
        failures = []
        # C.UTF-8: byte-order collation (stable sorting whatever the machine's locale) with UTF-8 character
        # classes. Some systems have no C.UTF-8 locale; --no-locale (plain C) with UTF8 encoding is as good here.
        for locale in ("--locale=C.UTF-8", "--no-locale"):
            shutil.rmtree(self.data, ignore_errors=True)
            done = self._run("initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8", locale,
                             # the server is thrown away: no need to wait for initdb's own fsync of every file
                             *(() if self.fsync else ("--no-sync",)))
            if done.returncode == 0:
                self.locale = locale
                return
            failures.append(f"initdb {locale}: exit {done.returncode}\n{done.stderr.strip()}")
        raise RuntimeError("initdb failed:\n" + "\n".join(failures))

    def _pg_ctl_start(self) -> None:
        assert self.dir is not None
        # A free port can be taken between free_port() and the server's bind: then try another.
        for _attempt in range(3):
            self.port = free_port()
            options = " ".join([
                f"-c listen_addresses={self.host}",  # loopback only, never '*'
                f"-p {self.port}",
                f"-k {shlex.quote(str(self.dir))}",  # the Unix socket in our own dir, not /var/run/postgresql
                f"-c fsync={'on' if self.fsync else 'off'}",
                "-c max_connections=200",  # tests run servers with connection pools side by side
                "-c shared_buffers=64MB",
            ])
            done = self._run("pg_ctl", "-D", str(self.data), "-o", options, "-w", "-t", str(START_TIMEOUT),
                             "-l", str(self.logfile), "start", timeout=START_TIMEOUT + 10)
            if done.returncode == 0:
                return
            if "could not bind" not in self.log() and "already in use" not in self.log():
                break
        raise RuntimeError(f"pg_ctl start failed (exit {done.returncode}): {done.stderr.strip()}\n"
                           f"server log {self.logfile}:\n{self.log()}")

    def stop(self) -> None:
        """Stop the server and remove its dir; safe to call twice, after a failed start and at exit."""
        if self.dir is None:
            return
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        if (self.data / "postmaster.pid").exists():
            # fast: roll back open transactions and disconnect the clients (a test may have left a pool open)
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop", timeout=40)
            # still there (pg_ctl timed out, or the binaries went away): by the pid file
            _kill_postmaster(self.data)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- databases ------------------------------------------------------------------------------------------------

    def create_database(self, name: str) -> str:
        """A new, empty database (from template0, so nothing a test put in template1 leaks in); its URL."""
        self._execute(f"CREATE DATABASE {_quote(name)} TEMPLATE template0")
        return self.url(name)

    def rename_database(self, name: str, new_name: str) -> str:
        """Give a database (one nobody is connected to) another name: a catalog update, instant; the new URL."""
        self._execute(f"ALTER DATABASE {_quote(name)} RENAME TO {_quote(new_name)}")
        return self.url(new_name)

    def drop_database(self, name: str) -> None:
        """Drop it even with clients still connected (FORCE ends their sessions): a test's pool left open."""
        self._execute(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)")

    def _execute(self, sql: str) -> None:
        # CREATE/DROP DATABASE cannot run inside a transaction; asyncpg's execute() of one statement does not open one.
        import asyncpg  # lazily: the rest of the suite runs without it

        async def execute() -> None:
            connection = await asyncpg.connect(self.url("postgres"), timeout=10)
            try:
                await connection.execute(sql)
            finally:
                await connection.close()

        _run_async(execute())


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
