"""The Dockerfile, built and answering (issue 16).

No image registry is reachable here, so `FROM python:3.11-slim` cannot be pulled. The test makes the base from
Debian's own packages instead: `debootstrap` (Debian 12, Python 3.11 in a venv on PATH, the host's CA bundle so
pip reaches PyPI through this network's proxy), `podman import`, cached as an image across runs. It then builds
the project's Dockerfile on it with `--build-arg BASE=…`, unchanged, and checks the image's user, volume, port,
command and HEALTHCHECK.

Running a container needs an OCI runtime, and this machine's crun refuses (cgroups in hybrid mode, rlimits), so
the image is started the way its build steps run: in a build stage on top of it (chroot isolation, host network),
as its own user, with its own CMD. The test posts a Teams message to it from outside and reads the reply at an
in-test Connector. Skips, saying why, where podman or debootstrap are missing or the user is not root.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from aiohttp import ClientSession, ClientTimeout, web

from tests.harness import BotServer, Connector, free_port, personal, reply_text

ROOT = Path(__file__).resolve().parents[2]
BASE = "localhost/kombit-debian-py311-base"
IMAGE = "localhost/kombit-assistant-test"
PATH_IN_BASE = "/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

pytestmark = pytest.mark.skipif(
    not (shutil.which("podman") and shutil.which("debootstrap") and os.geteuid() == 0),
    reason="needs podman and debootstrap (Debian packages) and root: the image test did not run here")


def _run(*args: str, timeout: float = 900, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False, **kw)


def _podman(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return _run("podman", *args, timeout=timeout)


def _base_image() -> None:
    """Debian 12 with Python 3.11 from debootstrap, made once and kept (about a minute)."""
    if _podman("image", "exists", BASE).returncode == 0:
        return
    with tempfile.TemporaryDirectory(prefix="kombit-rootfs-") as rootfs:
        made = _run("debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates", "bookworm",
                    rootfs, "http://deb.debian.org/debian")
        assert made.returncode == 0, made.stderr[-2000:]
        venv = _run("chroot", rootfs, "python3", "-m", "venv", "/opt/venv")
        assert venv.returncode == 0, venv.stderr
        shutil.copy("/etc/ssl/certs/ca-certificates.crt", Path(rootfs, "etc/ssl/certs/ca-certificates.crt"))
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        imported = _run("podman", "import", "--change", f"ENV PATH={PATH_IN_BASE}", "-", BASE, stdin=tar.stdout)
        tar.wait()
        assert imported.returncode == 0, imported.stderr


@pytest.fixture(scope="module")
def image() -> dict:
    _base_image()
    built = _podman("build", "--format", "docker", "--isolation=chroot", "--network=host", "--build-arg",
                    f"BASE={BASE}", "-t", IMAGE, str(ROOT))
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    inspected = _podman("image", "inspect", IMAGE)
    assert inspected.returncode == 0, inspected.stderr
    return json.loads(inspected.stdout)[0]


def test_the_image_runs_the_bot_as_its_own_user_with_the_data_dir_as_a_volume(image):
    config = image["Config"]
    assert config["User"] == "10001"  # the image's own user, by number
    assert config["Cmd"] == ["python", "-m", "bot", "serve"]
    assert "/data" in config["Volumes"] and "8080/tcp" in config["ExposedPorts"]
    assert {"PORT=8080", "BOT_DATA_DIR=/data", "HOST=0.0.0.0"} <= set(config["Env"])
    assert "/healthz" in " ".join(image["Healthcheck"]["Test"])  # podman reports it beside Config


def test_the_dependencies_are_a_layer_of_their_own():
    """The pip install comes before the code is copied in: a code change does not reinstall everything."""
    lines = [line.split()[0] for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
             if line and not line.startswith((" ", "#"))]
    assert lines.index("RUN") < lines.index("COPY", lines.index("RUN"))



async def test_the_image_starts_and_answers_a_teams_message(image, tmp_path):
    connector = Connector()
    done = asyncio.Event()

    async def finished(_: web.Request) -> web.Response:  # the stage below waits for this before it stops the bot
        return web.Response(status=200 if done.is_set() else 404)

    await connector.start()
    connector.runner.app.router._frozen = False
    connector.runner.app.router.add_get("/finished", finished)
    port = free_port()
    stage = tmp_path / "Containerfile"
    stage.write_text(
        f"FROM {IMAGE}\n"
        # The image's own CMD, as its own user, on the host network; the step ends when the test says so.
        f"RUN PORT={port} HOST=127.0.0.1 BOT_DATA_DIR=/tmp/data sh -c '$0 \"$@\" & pid=$!; "
        f"for i in $(seq 600); do python -c \"import urllib.request as u; u.urlopen(\\\"{connector.url}finished\\\")\" "
        f"2>/dev/null && break; sleep 0.2; done; kill $pid; wait $pid' python -m bot serve\n", encoding="utf-8")
    build = await asyncio.create_subprocess_exec(
        "podman", "build", "--isolation=chroot", "--network=host", "--no-cache", "-f", str(stage), str(tmp_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    maker = BotServer(data_dir=tmp_path / "unused", connector=connector)  # builds activities only
    try:
        async with ClientSession(timeout=ClientTimeout(total=10)) as session:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                assert build.returncode is None, (await build.stdout.read()).decode()[-3000:]
                try:
                    async with session.get(f"{url}/readyz") as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                assert time.monotonic() < deadline, "the bot in the image did not become ready"
                await asyncio.sleep(0.3)
            async with session.post(f"{url}/api/messages", json=maker.message("tilknyt Aarhus", personal())) as r:
                assert r.status == 201
        assert len(connector.sent) == 1 and "Aarhus Kommune" in reply_text(connector.sent[0])
    finally:
        done.set()
        output = (await asyncio.wait_for(build.communicate(), 60))[0].decode(errors="replace")
        await connector.stop()
    assert build.returncode == 0, output[-3000:]
