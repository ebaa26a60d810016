"""The three servers under test, each in its own subprocess, and what /proc tells about them.

Own processes because CPU per activity must be the server's alone: /proc/<pid>/stat utime+stime covers
all of a process's threads (botbuilder's stock client sends through `requests` in a thread pool, the
bot's authentication may use a worker thread) and nothing of the load generator's.
"""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
_TICKS = os.sysconf("SC_CLK_TCK")
_SCHEDSTAT = Path("/proc/self/schedstat").exists()  # kernels built without it: clock ticks


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ms(pid: int) -> float:
    """User + system CPU of the whole process so far, in ms: the scheduler's nanoseconds on a CPU, summed
    over its threads (/proc/PID/task/*/schedstat). /proc/PID/stat counts clock ticks, and a 10 ms tick is
    7 % of the bare server's CPU over a 300-activity run. (A thread that ended is no longer counted; the
    servers' threads live as long as they do.) Clock ticks where the kernel has no schedstat."""
    if _SCHEDSTAT:
        total = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
            except FileNotFoundError:
                continue  # the thread ended meanwhile
        return total / 1e6
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # the command name may hold spaces; fields follow its ")"
    return (int(fields[11]) + int(fields[12])) * 1000 / _TICKS


def machine_busy_ms() -> float:
    """CPU time all cores spent on anything but idle and iowait since boot, in ms (from /proc/stat)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) * 1000 / _TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def server_env(**extra: str) -> dict[str, str]:
    """The environment for a server: local mode (no app id), and loopback never through a proxy."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MicrosoftApp", "BOT_")) and k not in ("PORT", "HOST")}
    no_proxy = ",".join(filter(None, ["127.0.0.1", "localhost", env.get("NO_PROXY", "")]))
    env.update(NO_PROXY=no_proxy, no_proxy=no_proxy, **extra)
    return env


@dataclass
class Server:
    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    log_path: Path
    health_path: str | None = "/healthz"  # None: the server has no health route, wait for the port instead
    proc: subprocess.Popen | None = field(default=None, repr=False)
    activities: int = 0  # POSTs sent to it since start, counted by the bench (RSS checkpoints use it)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        log = self.log_path.open("ab")
        # Its own process group, so stopping it can never touch the bench or anything else.
        self.proc = subprocess.Popen(self.argv, cwd=REPO, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    async def wait_ready(self, timeout: float = 60.0, interval: float = 0.005) -> float:
        """Seconds from now until the server answers (200 on its health route, or accepts a connection)."""
        started = time.perf_counter()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before it was ready; "
                                       f"see {self.log_path}:\n{self.log_tail()}")
                try:
                    if self.health_path:
                        async with session.get(self.url + self.health_path) as response:
                            if response.status == 200:
                                return time.perf_counter() - started
                    else:
                        _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                        writer.close()
                        return time.perf_counter() - started
                except (aiohttp.ClientError, OSError):
                    pass
                if time.perf_counter() - started > timeout:
                    raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s; see {self.log_path}")
                await asyncio.sleep(interval)

    async def start_timed(self, timeout: float = 60.0) -> tuple[float, float]:
        """Start it; seconds from the spawn to 200 on /healthz (alive) and to 200 on /readyz (ready for traffic:
        the store writable, which with PostgreSQL is the first query)."""
        started = time.perf_counter()
        self.start()
        await self.wait_ready(timeout=timeout, interval=0.002)
        healthz = time.perf_counter() - started
        health, self.health_path = self.health_path, "/readyz"
        try:
            await self.wait_ready(timeout=timeout, interval=0.002)
        finally:
            self.health_path = health
        return healthz, time.perf_counter() - started

    def stop(self, timeout: float = 10.0) -> None:
        """SIGINT first (aiohttp shuts down cleanly and cProfile writes its file), then SIGKILL."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def bare(workdir: Path) -> Server:
    port = free_port()
    return Server("bare", [sys.executable, "-m", "bench.bare_server", str(port)], server_env(), port,
                  workdir / "bare.log")


def echo(workdir: Path) -> Server:
    port = free_port()
    return Server("echo", [sys.executable, "-m", "bench.echo_bot", str(port)], server_env(), port,
                  workdir / "echo.log", health_path=None)


def bot(workdir: Path, data_dir: Path, python_args: tuple[str, ...] = (), database_url: str = "") -> Server:
    """`python -m bot serve` exactly as `make run` starts it, on loopback with its own data dir, or with
    database_url on PostgreSQL (BOT_DATABASE_URL; named "bot-pg").

    python_args go before `-m bot`, e.g. ("-m", "cProfile", "-o", FILE) to profile it."""
    port = free_port()
    extra = {"BOT_DATABASE_URL": database_url} if database_url else {}
    env = server_env(PORT=str(port), HOST="127.0.0.1", BOT_DATA_DIR=str(data_dir), **extra)
    name = "bot-pg" if database_url else "bot"
    return Server(name, [sys.executable, *python_args, "-m", "bot", "serve"], env, port, workdir / f"{name}.log")


def check_code() -> str:
    """The servers run this checkout's code (cwd REPO, `python -m bot`), not another copy an editable install
    points at: the path of the `bot` package a server imports, or RuntimeError."""
    found = subprocess.run([sys.executable, "-c", "import bot, dialogs; print(bot.__file__); print(dialogs.__file__)"],
                           cwd=REPO, env=server_env(), capture_output=True, text=True, timeout=60)
    paths = [Path(line).resolve() for line in found.stdout.split()]
    if found.returncode or len(paths) != 2 or any(REPO not in path.parents for path in paths):
        raise RuntimeError(f"`python -m bot` from {REPO} imports {found.stdout.split() or found.stderr[-300:]}, "
                           f"not this checkout's code")
    return str(paths[0].parent)
