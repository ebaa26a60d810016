"""`make playground`: the bot and Microsoft 365 Agents Playground (a local, offline Teams client) together.

    make playground          # then open http://localhost:56150; Ctrl-C stops both

What it does, in order:
1. Makes sure the Playground npm package pinned in package.json is in ./node_modules (`npm ci` from
   package-lock.json when missing). Without Node.js/npm it says so and points to `make chat`.
2. Checks that port 56150 is free. The Playground itself would silently move to a random port; here a
   taken port is an error, so the address you open is always http://localhost:56150.
3. Starts the bot (`python -m bot serve` with this interpreter, the project's venv under make) on
   $PORT (default 3978), bound to 127.0.0.1, local mode without authentication, and waits for /healthz.
4. Starts the Playground with telemetry off, msteams channel, the mock tenant from
   .m365agentsplayground.yml (valid GUIDs, Mette Hansen as you). Its own log: devTools/m365agentsplayground.log.

The Playground's licence does not allow redistribution: node_modules/ is gitignored, never commit it.
tests/e2e/test_playground.py imports the helpers below, so the test and `make playground` start the
Playground the same way.
"""
from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "@microsoft/m365agentsplayground"
PACKAGE_DIR = ROOT / "node_modules" / "@microsoft" / "m365agentsplayground"
CONFIG_FILE = ROOT / ".m365agentsplayground.yml"
PLAYGROUND_PORT = 56150
PORT_TAKEN = "Port 56150 is taken – is another Playground running? Stop it or free the port."
NO_NPM = ("Node.js/npm not found: Microsoft 365 Agents Playground needs them ({what}).\n"
          "Fallback: `make chat` talks to the same assistant in this terminal.")
# Variables of the Playground's that would change what we pass on the command line or where it writes.
_PLAYGROUND_VARS = ("TEAMSAPPTESTER_PORT", "TEAMSAPPTESTER_LOGFILE", "TEAMS_APP_TEST_TOOL_CONFIG_PATH",
                    "M365_AGENTS_PLAYGROUND_SERVICE_URL", "M365_AGENTS_PLAYGROUND_CONVERSATION_ID",
                    "M365_AGENTS_PLAYGROUND_DELIVERY_MODE", "M365_AGENTS_PLAYGROUND_ENABLE_EVENTS_RECORDING")


class Unavailable(Exception):
    """The Playground cannot run here (no Node.js/npm): not a failure of the bot."""


class InstallFailed(Exception):
    pass


def pinned_version() -> str:
    return json.loads((ROOT / "package.json").read_text(encoding="utf-8"))["dependencies"][PACKAGE]


def installed_version() -> str | None:
    try:
        return json.loads((PACKAGE_DIR / "package.json").read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError):
        return None


def ensure_installed(say=print) -> tuple[str, Path]:
    """(node, cli.js) of the pinned Playground, installing it into ./node_modules when missing.

    Raises Unavailable without node/npm, InstallFailed when npm ran and did not install it."""
    node = shutil.which("node")
    if node is None:
        raise Unavailable(NO_NPM.format(what="`node` is not on PATH"))
    version = pinned_version()
    cli = PACKAGE_DIR / "cli.js"
    if installed_version() == version and cli.is_file():
        return node, cli
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable(NO_NPM.format(what="`npm` is not on PATH"))
    command = [npm, "ci" if (ROOT / "package-lock.json").is_file() else "install", "--no-audit", "--no-fund"]
    say(f"Installing {PACKAGE}@{version} into node_modules/ ({' '.join(command[1:])}) …")
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if done.returncode != 0 or installed_version() != version or not cli.is_file():
        raise InstallFailed(f"`npm {' '.join(command[1:])}` did not install {PACKAGE}@{version} "
                            f"(exit {done.returncode}):\n{done.stdout}{done.stderr}".rstrip())
    return node, cli


def port_free(port: int) -> bool:
    """Whether a server can listen on `port` on every interface, as the Playground does (Node: '::')."""
    for family, address in ((socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")):
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            continue  # no IPv6 here: try IPv4
        with sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as libuv: TIME_WAIT is no obstacle
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            try:
                sock.bind((address, port))
                sock.listen(1)
            except OSError:
                return False
            return True
    return False


def die_with_parent() -> None:
    """preexec_fn: on Linux, the child gets SIGTERM when this process dies, even by SIGKILL (no orphans)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def bot_env(port: int, base: dict | None = None) -> dict:
    env = dict(os.environ if base is None else base)
    env["PORT"] = str(port)
    env.setdefault("HOST", "127.0.0.1")  # the Playground is on this machine: no need to listen wider
    return env


def playground_command(node: str, cli: Path, bot_port: int, port: int) -> list[str]:
    return [node, str(cli), "--app-endpoint", f"http://127.0.0.1:{bot_port}/api/messages",
            "--channel-id", "msteams", "--port", str(port),
            "--service-url", f"http://127.0.0.1:{port}/_connector", "--disable-telemetry"]


def playground_env(log_file: Path, base: dict | None = None) -> dict:
    env = dict(os.environ if base is None else base)
    for name in _PLAYGROUND_VARS:
        env.pop(name, None)
    env.update({
        "APPLICATION_INSIGHTS_NO_STATSBEAT": "true",
        "TEAMSAPPTESTER_BROWSER": "none",  # we print the address; no browser popping up from a terminal
        "M365_AGENTS_PLAYGROUND_CONFIG_PATH": str(CONFIG_FILE),
        "M365_AGENTS_PLAYGROUND_LOGFILE": str(log_file),
    })
    return env


def wait_healthy(url: str, process: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    return False


def listening_port(process: subprocess.Popen, timeout: float) -> int | None:
    """The port from the Playground's "Listening on N" (printed on stdout when stdout is not a terminal)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read():
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.05, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            return None
        if line.startswith("Listening on "):
            return int(line.split()[-1])
    return None


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log written)"


def stop(*processes: subprocess.Popen | None) -> None:
    for process in processes:
        if process and process.poll() is None:
            process.terminate()
    for process in processes:
        if process:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def main() -> int:
    try:
        node, cli = ensure_installed()
    except Unavailable as exc:
        print(exc, file=sys.stderr)
        return 1
    except (InstallFailed, subprocess.TimeoutExpired) as exc:
        print(f"{exc}\nFallback: `make chat` talks to the same assistant in this terminal.", file=sys.stderr)
        return 1
    if not port_free(PLAYGROUND_PORT):
        print(PORT_TAKEN, file=sys.stderr)
        return 1
    bot_port = int(os.environ.get("PORT", "3978") or 3978)
    if not port_free(bot_port):
        print(f"Port {bot_port} (the bot's) is taken – is `make run` already running? Stop it, or set "
              f"PORT to another port.", file=sys.stderr)
        return 1

    def terminated(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminated)
    log_file = ROOT / "devTools" / "m365agentsplayground.log"
    bot = playground = None
    try:
        bot = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=ROOT, env=bot_env(bot_port),
                               preexec_fn=die_with_parent)
        if not wait_healthy(f"http://127.0.0.1:{bot_port}/healthz", bot, timeout=60):
            print("The bot did not start (see its output above).", file=sys.stderr)
            return 1
        playground = subprocess.Popen(playground_command(node, cli, bot_port, PLAYGROUND_PORT), cwd=ROOT,
                                      env=playground_env(log_file), stdout=subprocess.PIPE, text=True,
                                      preexec_fn=die_with_parent)
        port = listening_port(playground, timeout=60)
        if port != PLAYGROUND_PORT:
            if port is not None:  # taken between our check and its start: it moved on by itself
                print(PORT_TAKEN, file=sys.stderr)
            else:
                print(f"The Playground did not start. The end of {log_file}:\n{log_tail(log_file)}",
                      file=sys.stderr)
            return 1
        print(f"\nOpen http://localhost:{PLAYGROUND_PORT}\n"
              f"  You are Mette Hansen in a mock Teams tenant (.m365agentsplayground.yml); try «tilmeld Aarhus»,\n"
              f"  «hvad skal vi nu?», «udført 1», «status», «hvad betyder go-live?». The bot answers in the language\n"
              f"  you write in (the Playground's en-US locale only decides when that is unclear).\n"
              f"  Playground log: {log_file.relative_to(ROOT)}. Ctrl-C stops the bot and the Playground.\n",
              flush=True)
        while True:
            if bot.poll() is not None:
                print(f"The bot stopped (exit {bot.returncode}); stopping the Playground.", file=sys.stderr)
                return 1
            if playground.poll() is not None:
                print(f"The Playground stopped (exit {playground.returncode}). The end of {log_file}:\n"
                      f"{log_tail(log_file)}", file=sys.stderr)
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nStopping the bot and the Playground …", file=sys.stderr)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave orphans
        stop(playground, bot)


if __name__ == "__main__":
    sys.exit(main())
