"""The bot in Microsoft 365 Agents Playground (npm @microsoft/m365agentsplayground, pinned in package.json),
end to end through the Playground's own HTTP and WebSocket endpoints, the ones its web page uses:

    GET  /_internal/v1/config                              config (waits until the bot's endpoint answers)
    WS   /_ws_conversation/v1/conversations/stream         {"action": "createMessage" | "updateMessage" | "typing",
                                                            "actionConversationId", "message": {messageId, from,
                                                            text, textFormat, attachments: [{contentType, content}]}}
    WS   /_ws/log/stream                                   {"logAction": "appendLog", "log": {...}}: the log pane,
                                                            with every activity to and from the bot and its status
    POST /_debug/conversation/{id}/installation  {}        "install": installationUpdate + conversationUpdate
    POST /_conversation/v1/conversations/{id}/messages     {"type": "text", "text", "textFormat": "plain",
                                                            "from": {"id"}} -> {"messageId", "timestamp"}
    POST /_conversation/v1/submit                          an Action.Submit press: {"conversation": {"id"},
                                                            "replyToId": card messageId, "value": data, "from": {"id"}}

The bot and the Playground run as subprocesses on free ports on 127.0.0.1, started the way `make
playground` starts them (tools/playground.py). Without Node.js/npm the Playground tests are skipped with
the reason; with npm, a missing package is installed into ./node_modules first (`npm ci`).
"""
from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import yaml

from content import load_content
from tests.wording import t

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("playground_launcher", ROOT / "tools" / "playground.py")
launcher = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(launcher)

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
ADAPTIVE = "application/vnd.microsoft.card.adaptive"
STEP = 20  # seconds to wait for any one reply; a turn takes well under a second


def test_config_file_is_what_the_playground_accepts():
    """The rules the Playground checks at start-up (schema 0.1.1) plus ours: GUIDs, named people, a channel."""
    config = yaml.safe_load(launcher.CONFIG_FILE.read_text(encoding="utf-8"))
    assert config["version"] == "0.1.1"
    assert GUID.match(config["tenantId"]) and GUID.match(config["bot"]["id"])
    assert len(config["bot"]["name"]) <= 42
    assert len(config["users"]) == 5  # the schema's minItems and maxItems
    people = [config["currentUser"], *config["users"]]
    assert len({p["id"] for p in people}) == len(people)
    assert all(GUID.match(p["aadObjectId"]) for p in people)
    names = {p["name"] for p in people}
    assert config["currentUser"]["name"] == "Mette Hansen" and "Lars Nielsen" in names
    assert len(config["team"]["channels"]) == 1
    ids = [config["personalChat"]["id"], config["groupChat"]["id"], config["team"]["id"],
           *(c["id"] for c in config["team"]["channels"])]
    assert len(set(ids)) == len(ids)


def test_launcher_without_npm_points_to_the_terminal_chat(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "playground.py")], cwd=ROOT,
                          env={"PATH": str(tmp_path), "HOME": str(tmp_path)},
                          capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "make chat" in done.stderr and "npm" in done.stderr


@pytest.fixture(scope="module")
def playground_cli() -> tuple[str, Path]:
    try:
        return launcher.ensure_installed(say=lambda message: None)
    except launcher.Unavailable as exc:
        pytest.skip(f"the Microsoft 365 Agents Playground e2e test did NOT run: {str(exc).splitlines()[0]} "
                    f"Install Node.js with npm to run it.")
    except (launcher.InstallFailed, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"npm is here but the pinned Playground could not be installed: {exc}")


def test_launcher_refuses_a_taken_port(playground_cli, tmp_path):
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a TIME_WAIT left over is not "taken"
    try:
        holder.bind(("127.0.0.1", launcher.PLAYGROUND_PORT))
        holder.listen(1)
    except OSError:
        pass  # a server is on it already (a Playground running here): the launcher must refuse all the same
    # Should the launcher not refuse, it would start the bot and the Playground: keep them off the
    # developer's data and ports, and end them all after the timeout.
    env = launcher.bot_env(_free_port())
    env["BOT_DATA_DIR"] = str(tmp_path / "data")
    launched = subprocess.Popen([sys.executable, str(ROOT / "tools" / "playground.py")], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = launched.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(launched.pid, signal.SIGTERM)
        out, err = launched.communicate()
        pytest.fail(f"the launcher did not refuse a taken port 56150 and kept running:\n{out}{err}")
    finally:
        holder.close()
    assert launched.returncode != 0
    assert launcher.PORT_TAKEN in err
    assert "Open http" not in out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 30) -> str:
    return launcher.log_tail(path, lines)


@dataclass
class Stack:
    base: str
    bot_log: Path
    playground_log: Path

    def ws(self, path: str) -> str:
        return self.base.replace("http://", "ws://", 1) + path

    def diagnostics(self) -> str:
        return (f"\n--- bot output ({self.bot_log}) ---\n{_tail(self.bot_log)}"
                f"\n--- Playground log ({self.playground_log}) ---\n{_tail(self.playground_log)}")


@pytest.fixture
def stack(tmp_path, playground_cli):
    node, cli = playground_cli
    bot_port = _free_port()
    port = _free_port()
    while port == bot_port:
        port = _free_port()
    env = launcher.bot_env(bot_port)
    for name in ("MicrosoftAppId", "MicrosoftAppPassword", "MicrosoftAppType", "MicrosoftAppTenantId",
                 "BOT_ALLOWED_TENANTS", "BOT_OPENID_METADATA_URL", "BOT_TOKEN_ISSUER", "BOT_LOGIN_URL",
                 "BOT_OAUTH_SCOPE"):
        env.pop(name, None)  # local mode, as in `make playground`
    env.update(HOST="127.0.0.1", BOT_DATA_DIR=str(tmp_path / "data"), BOT_NUDGE_INTERVAL_MINUTES="0")
    bot_log, playground_log = tmp_path / "bot.log", tmp_path / "m365agentsplayground.log"
    with open(bot_log, "w") as bot_out, open(tmp_path / "playground.stderr", "w") as pg_err:
        bot = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=ROOT, env=env,
                               stdout=bot_out, stderr=subprocess.STDOUT, preexec_fn=launcher.die_with_parent)
        playground = None
        try:
            assert launcher.wait_healthy(f"http://127.0.0.1:{bot_port}/healthz", bot, timeout=30), \
                f"the bot did not start:\n{_tail(bot_log)}"
            # cwd: a temporary folder, so the test's devTools/ never clobbers a running `make playground`'s.
            playground = subprocess.Popen(launcher.playground_command(node, cli, bot_port, port), cwd=tmp_path,
                                          env=launcher.playground_env(playground_log),
                                          stdout=subprocess.PIPE, stderr=pg_err, text=True,
                                          preexec_fn=launcher.die_with_parent)
            listening = launcher.listening_port(playground, timeout=30)
            assert listening == port, (f"the Playground is not listening on {port} (it said {listening}):\n"
                                       f"{_tail(playground_log)}")
            yield Stack(f"http://127.0.0.1:{port}", bot_log, playground_log)
        finally:
            launcher.stop(playground, bot)


class Stream:
    """Everything one of the Playground's WebSockets sends, read in the background."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, diagnostics):
        self.ws, self.items, self.diagnostics = ws, [], diagnostics
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self):
        async for message in self.ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.items.append(json.loads(message.data))
                self._changed.set()

    def mark(self) -> int:
        return len(self.items)

    async def wait_for(self, what: str, predicate, after: int = 0, timeout: float = STEP):
        deadline = time.monotonic() + timeout
        while True:
            for item in self.items[after:]:
                if predicate(item):
                    return item
            left = deadline - time.monotonic()
            if left <= 0:
                seen = json.dumps(self.items[after:], ensure_ascii=False)[:3000]
                raise AssertionError(f"no {what} within {timeout:.0f} s; received: {seen}{self.diagnostics()}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    async def close(self):
        await self.ws.close()
        self._task.cancel()


def _from_bot(bot_id: str, action: str = "createMessage"):
    return lambda item: item.get("action") == action and item["message"]["from"]["id"] == bot_id


def _text_from_bot(bot_id: str):
    create = _from_bot(bot_id)
    return lambda item: create(item) and bool(item["message"].get("text"))


def _card(message: dict) -> dict | None:
    for attachment in message.get("attachments") or []:
        if attachment.get("contentType") == ADAPTIVE:
            return attachment["content"]
    return None


def _submits(node):
    if isinstance(node, dict):
        if node.get("type") == "Action.Submit":
            yield node
        for value in node.values():
            yield from _submits(value)
    elif isinstance(node, list):
        for value in node:
            yield from _submits(value)


async def test_install_register_next_and_press_a_card_button(stack):
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        # As the web page starts: config first (the Playground waits there until the bot answers).
        async with http.get(f"{stack.base}/_internal/v1/config") as response:
            assert response.status == 200, await response.text()
            loaded = await response.json()
        config, internal = loaded["config"], loaded["internalConfig"]
        assert internal["channelId"] == "msteams"
        assert GUID.match(config["tenantId"]) and GUID.match(config["bot"]["id"])  # ours, not the built-in ids
        assert config["currentUser"]["name"] == "Mette Hansen"
        assert "Lars Nielsen" in {u["name"] for u in config["users"]}
        assert [c["name"] for c in config["teams"][0]["channels"]] == ["General", "Projektgruppe"]
        chat, me, bot_id = config["personalChat"]["id"], config["currentUser"], config["bot"]["id"]

        conversation = Stream(await http.ws_connect(stack.ws("/_ws_conversation/v1/conversations/stream")),
                              stack.diagnostics)
        log = Stream(await http.ws_connect(stack.ws("/_ws/log/stream")), stack.diagnostics)
        try:
            async def say(text: str) -> dict:
                mark = conversation.mark()
                async with http.post(f"{stack.base}/_conversation/v1/conversations/{chat}/messages",
                                     json={"type": "text", "text": text, "textFormat": "plain",
                                           "from": {"id": me["id"]}}) as response:
                    assert response.status == 200, await response.text()
                    assert (await response.json())["messageId"]
                return (await conversation.wait_for(f"reply to «{text}»", _from_bot(bot_id), mark))["message"]

            # Install: the Playground sends installationUpdate and conversationUpdate; one greeting comes back.
            async with http.post(f"{stack.base}/_debug/conversation/{chat}/installation", json={}) as response:
                assert response.status == 200, await response.text()
            greeting = (await conversation.wait_for("greeting", _text_from_bot(bot_id)))["message"]
            assert greeting["text"] == t("en", "greet.body")  # the Playground's locale is en-US

            # The Playground sends locale "en-US" with every activity (hard-coded in 0.2.28), and the bot
            # follows the client's locale; a user who wants Danish says so, once.
            reply = await say("svar på dansk")
            assert reply["text"] == t("da", "language.done"), reply
            greetings = [i for i in conversation.items
                         if _text_from_bot(bot_id)(i) and i["message"]["text"] in (t("da", "greet.body"),
                                                                                   t("en", "greet.body"))]
            assert len(greetings) == 1, f"greeted {len(greetings)} times for one installation"

            reply = await say("tilmeld Aarhus")
            assert "Aarhus Kommune" in reply["text"], reply

            reply = await say("hvad skal vi nu?")
            card = _card(reply)
            assert card is not None, f"no Adaptive Card in the reply: {reply}"
            done_buttons = [a for a in _submits(card) if a.get("title") == t("da", "card.done")]
            assert done_buttons, f"no «Udført» button on the card: {json.dumps(card, ensure_ascii=False)[:2000]}"
            pressed = done_buttons[0]["data"]

            mark = conversation.mark()
            async with http.post(f"{stack.base}/_conversation/v1/submit",
                                 json={"conversation": {"id": chat}, "replyToId": reply["messageId"],
                                       "value": pressed, "from": {"id": me["id"]}}) as response:
                assert response.status == 200, await response.text()
            updated = await conversation.wait_for(
                "update of the pressed card",
                lambda i: _from_bot(bot_id, "updateMessage")(i) and i["message"]["messageId"] == reply["messageId"],
                mark)
            new_card = _card(updated["message"])
            assert new_card is not None and new_card != card
            still_open = [a["data"].get("task") for a in _submits(new_card) if a["data"].get("a") == "done"]
            assert pressed["task"] not in still_open, "the pressed task still has its «Udført» button"
            confirmation = (await conversation.wait_for("confirmation of the press", _text_from_bot(bot_id), mark))
            title = load_content().task(pressed["task"]).title.da
            assert confirmation["message"]["text"] == t("da", "mark.done", task=title, who="Mette Hansen"), confirmation

            # The log pane: every activity to the bot carried the tenant from our config, and nothing the
            # bot answered or sent was refused.
            await log.wait_for("log of the confirmation", lambda i: i.get("log", {}).get("messageId")
                               == confirmation["message"]["messageId"])
            entries = [i["log"] for i in log.items if i.get("logAction") == "appendLog"]
            problems = [e for e in entries if e.get("level") in ("warning", "error")
                        or (e.get("response") or {}).get("statusCode", 200) >= 400]
            assert not problems, json.dumps(problems, ensure_ascii=False)[:3000]
            to_bot = [e["request"]["body"] for e in entries if e.get("to") == "User Application"]
            assert to_bot and all(a["channelData"]["tenant"]["id"] == config["tenantId"] for a in to_bot)
        finally:
            await conversation.close()
            await log.close()
