"""Real components for end-to-end tests: the bot's aiohttp server on a free port, an in-test Connector
that records what the bot sends, and Teams-shaped activities."""
from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import ClientSession, web

from bot.app import build_services, make_app
from bot.config import Config

BOT_ID = "28:bot-app-id"
TENANT = "6f1c2b7e-0000-4000-8000-000000000001"
OTHER_TENANT = "6f1c2b7e-0000-4000-8000-000000000002"
_ids = itertools.count(1)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a server started in a subprocess)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Clock:
    def __init__(self, now: datetime = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Connector:
    """Stands in for the Bot Connector service: records every activity the bot posts."""

    def __init__(self):
        self.sent: list[dict] = []
        self.fail_with: int | None = None  # answer every send with this status, to test delivery failures
        self.fail_next: list[tuple[int, dict]] = []  # (status, headers) answers for the next sends, then success
        self.updated: list[dict] = []  # PUTs: cards redrawn in place after a button press
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.fail_with:
            return web.json_response({"error": {"code": "Failure"}}, status=self.fail_with)
        if self.fail_next:
            status, headers = self.fail_next.pop(0)
            return web.json_response({"error": {"code": "Failure"}}, status=status, headers=headers)
        body["_path"] = request.path
        self.sent.append(body)
        return web.json_response({"id": f"reply-{len(self.sent)}"})

    async def _put(self, request: web.Request) -> web.Response:
        body = await request.json()
        body["_path"] = request.path
        self.updated.append(body)
        return web.json_response({"id": request.match_info["activity"]})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v3/conversations/{conversation}/activities", self._post)
        app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", self._post)
        app.router.add_put("/v3/conversations/{conversation}/activities/{activity}", self._put)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/"

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()

    def texts(self) -> list[str]:
        return [reply_text(a) for a in self.sent if a.get("type") == "message"]


def card_of(activity: dict) -> dict | None:
    for attachment in activity.get("attachments") or []:
        if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive":
            return attachment["content"]
    return None


def reply_text(activity: dict) -> str:
    """What the user reads: the text, or for a card its text twin (fallbackText), which holds all of it."""
    card = card_of(activity)
    return card["fallbackText"] if card else activity.get("text", "")


@dataclass
class Where:
    """A place in Teams a message can come from."""

    conversation_id: str
    kind: str = "personal"
    team_id: str | None = None
    tenant_id: str = TENANT

    def thread(self, message_id: str = "1700000000000") -> Where:
        return Where(f"{self.conversation_id};messageid={message_id}", self.kind, self.team_id, self.tenant_id)


@dataclass
class Person:
    aad_id: str = "aad-mette"
    name: str = "Mette Hansen"
    locale: str = "da-DK"


def personal(n: int = 1, tenant: str = TENANT) -> Where:
    return Where(f"a:personal-{n}", "personal", None, tenant)


def channel(team: str = "19:team-aarhus@thread.tacv2", channel_id: str = "19:general@thread.tacv2", tenant: str = TENANT) -> Where:
    return Where(channel_id, "channel", team, tenant)


def group_chat(n: int = 1, tenant: str = TENANT) -> Where:
    return Where(f"19:group-{n}@thread.v2", "groupChat", None, tenant)


@dataclass
class BotServer:
    data_dir: Path
    clock: Clock = field(default_factory=Clock)
    connector: Connector = field(default_factory=Connector)
    runner: web.AppRunner | None = None
    url: str = ""
    session: ClientSession | None = None
    config_overrides: dict = field(default_factory=dict)  # extra Config fields, e.g. allowed_tenants
    content_root: Path | None = None  # a copied, edited content dir (waves, extra tasks)

    async def start(self) -> None:
        if not self.connector.url:
            await self.connector.start()
        self.runner = web.AppRunner(self.build_app())
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        self.session = self.session or ClientSession()
        if self.database_url:  # a test meant for PostgreSQL must never pass on the data dir
            assert type(self.store).__name__ == "PgStore", type(self.store)

    def build_app(self) -> web.Application:
        """The bot's app as the tests want it; a test with its own config or services overrides this."""
        config = Config(data_dir=self.data_dir, port=0, **self.config_overrides)
        services = build_services(config, self.content_root) if self.content_root else None
        return make_app(config, clock=self.clock, services=services)

    async def checkpoint(self) -> None:
        """Marks reach the audit trail at once and their municipality's file within a second (bot/app.py):
        a test that reads the files calls this first."""
        await self.store.checkpoint()

    # -- what the store holds, from either store (TinyDB data dir or PostgreSQL) ------------------------------
    @property
    def store(self):
        """The running app's store (dialogs/store.py's Store: TinyStore or PgStore)."""
        from bot.app import SERVICES

        assert self.runner is not None, "the bot is stopped: start it to reach its store"
        return self.runner.app[SERVICES].store

    @property
    def database_url(self) -> str:
        """The PostgreSQL database the bot runs on, or "" for the data dir."""
        return self.config_overrides.get("database_url", "")

    @contextlib.asynccontextmanager
    async def _database(self):
        """A connection to the bot's PostgreSQL database: from the running store's pool, or (the bot stopped,
        say while an admin command runs) from a pool of its own."""
        own = None
        if self.runner is not None:
            store = self.store
        else:
            from bot.pg_store import PgStore

            store = own = PgStore(self.database_url, min_connections=1, max_connections=1)
        try:
            async with (await store.pool()).acquire() as conn:
                yield conn
        finally:
            if own is not None:
                await own.aclose()

    async def events(self, code: str | None = None) -> list[dict]:
        """The audit trail, in trail order, each event as a dict (as a line of audit.jsonl): the file's lines
        (parsed as audit_events does: a torn or non-JSON line fails), or the events table by seq."""
        if not self.database_url:
            found = audit_events(self.data_dir)
        else:
            async with self._database() as conn:
                found = [dict(row["body"]) for row in await conn.fetch("select body from events order by seq")]
        return [e for e in found if code is None or e["code"] == code]

    async def municipality_state(self, code: str):
        """The municipality's MunicipalityState as the store reads it (store.municipality)."""
        if self.runner is not None:
            return await self.store.municipality(code)
        store = Config(data_dir=self.data_dir, port=0, **self.config_overrides).open_store()
        try:
            return await store.municipality(code)
        finally:
            await store.aclose()
            store.close()

    async def municipality_docs(self) -> dict[str, dict]:
        """code -> every stored municipality's document, as its store keeps it (the file's document with its
        history index, or the municipalities table's doc), once what is only cached is written."""
        if not self.database_url:
            if self.runner is not None:
                await self.checkpoint()
            return stored_municipalities(self.data_dir)
        async with self._database() as conn:
            return {row["code"]: dict(row["doc"]) for row in await conn.fetch("select code, doc from municipalities")}

    async def stored_text(self, without: tuple[str, ...] = ()) -> str:
        """Everything the store keeps, as text, once what is only cached is written: to prove something is (not)
        in it, or that a request changed nothing. The data dir's files (stored_text), or every table's rows.
        without: memory to leave out, by the data dir's file name ("lists", "conversations", "nudges"); in
        PostgreSQL "lists" is the threads table."""
        if not self.database_url:
            if self.runner is not None:
                await self.checkpoint()
            return stored_text(self.data_dir, without)
        tables = {"lists": "threads"}
        skip = {tables.get(name, name) for name in without}
        out = []
        async with self._database() as conn:
            names = [row["table_name"] for row in await conn.fetch(
                "select table_name from information_schema.tables where table_schema = 'public' "
                "and table_type = 'BASE TABLE' order by table_name")]
            for name in names:
                if name in skip:
                    continue
                rows = await conn.fetch(f'select t::text as row from "{name}" t order by 1')
                out += [f"{name}: {row['row']}\n" for row in rows]
        return "".join(out)

    async def stop_bot(self) -> None:
        if self.runner:
            await self.runner.cleanup()
            self.runner = None

    async def restart(self) -> None:
        await self.stop_bot()
        await self.start()

    async def close(self) -> None:
        await self.stop_bot()
        await self.connector.stop()
        if self.session:
            await self.session.close()

    # -- sending ----------------------------------------------------------------------------------
    def activity(self, where: Where, person: Person | None = None, **fields) -> dict:
        person = person or Person()
        activity = {
            "type": "message",
            "id": f"act-{next(_ids)}",
            "timestamp": self.clock().isoformat(),
            "channelId": "msteams",
            "serviceUrl": self.connector.url,
            "from": {"id": f"29:{person.aad_id}", "name": person.name, "aadObjectId": person.aad_id},
            "recipient": {"id": BOT_ID, "name": "Implementeringsassistent"},
            "conversation": {"id": where.conversation_id, "conversationType": where.kind, "tenantId": where.tenant_id},
            "channelData": {"tenant": {"id": where.tenant_id}},
            "locale": person.locale,
        }
        if where.team_id:
            activity["channelData"]["team"] = {"id": where.team_id}
            activity["channelData"]["channel"] = {"id": where.conversation_id.split(";")[0]}
        activity.update(fields)
        return activity

    def message(self, text: str, where: Where, person: Person | None = None, mention: bool | None = None) -> dict:
        """A Teams message; in channels and group chats the bot is @mentioned unless mention=False."""
        mention = where.kind != "personal" if mention is None else mention
        if mention:
            at = "<at>Implementeringsassistent</at>"
            return self.activity(where, person, text=f"{at} {text}", entities=[
                {"type": "mention", "text": at, "mentioned": {"id": BOT_ID, "name": "Implementeringsassistent"}}])
        return self.activity(where, person, text=text)

    async def post(self, body: object, *, raw: bytes | None = None, content_type: str = "application/json") -> int:
        import json

        data = raw if raw is not None else json.dumps(body).encode()
        async with self.session.post(f"{self.url}/api/messages", data=data, headers={"Content-Type": content_type}) as r:
            await r.read()
            return r.status

    async def exchange(self, activity: dict) -> dict:
        """POST one activity; the one reply it must get."""
        before = len(self.connector.sent)
        status = await self.post(activity)
        assert status < 300, status
        new = self.connector.sent[before:]
        assert len(new) == 1, f"expected one reply, got {len(new)}"
        return new[0]

    async def say(self, text: str, where: Where, person: Person | None = None, mention: bool | None = None) -> str:
        """Send one message and return the bot's reply text ('' when it stayed silent)."""
        before = len(self.connector.sent)
        status = await self.post(self.message(text, where, person, mention))
        assert status < 300, f"POST /api/messages answered {status} for {text!r}"
        new = self.connector.sent[before:]
        assert len(new) <= 1, f"expected at most one reply, got {len(new)}"
        return reply_text(new[0]) if new else ""


def audit_events(data_dir: Path) -> list[dict]:
    """The audit trail, parsed ([] before the first event). A torn last line or a line that is not JSON fails
    the test: the store must never leave either behind once a change is acknowledged."""
    import json

    path = Path(data_dir) / "audit.jsonl"
    if not path.exists():
        return []
    raw = path.read_bytes()
    assert raw == b"" or raw.endswith(b"\n"), f"audit.jsonl ends in a torn line: {raw[-200:]!r}"
    events = []
    for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        try:
            events.append(json.loads(line))
        except ValueError as exc:
            raise AssertionError(f"audit.jsonl line {number} is not JSON ({exc}): {line[:200]!r}") from None
    return events


def answer_text(activities: list[dict]) -> str:
    """The whole answer: a card's text twin (fallbackText) when the bot sent a card, else the message text."""
    for activity in activities:
        for attachment in activity.get("attachments") or []:
            fallback = (attachment.get("content") or {}).get("fallbackText")
            if fallback:
                return fallback
    return "\n\n".join(a.get("text", "") for a in activities if a.get("type") == "message" and a.get("text"))


def stored_municipalities(data_dir: Path) -> dict[str, dict]:
    """code -> the municipality's stored document (bot/store.py keeps one file per municipality)."""
    import json

    out = {}
    for path in sorted((Path(data_dir) / "municipalities").glob("*.json")):
        for doc in (json.loads(path.read_text(encoding="utf-8")).get("municipality") or {}).values():
            out[doc["code"]] = doc
    return out


def stored_text(data_dir: Path, without: tuple[str, ...] = ()) -> str:
    """Every byte of state the store keeps, as text: to prove something is (not) in it. without: files of the
    data dir to leave out, by name without .json ("lists")."""
    data_dir = Path(data_dir)
    files = [*sorted(data_dir.glob("*.json")), data_dir / "audit.jsonl", *sorted((data_dir / "municipalities").glob("*.json"))]
    return "".join(p.read_text(encoding="utf-8") for p in files if p.exists() and p.stem not in without)


async def begin_gate(store, code: str, answers: dict | None = None, source: int = 1,
                     at: str = "2026-11-27T09:30:00+00:00") -> None:
    """A self-check in progress, made as the gate dialog makes it: its start and its answers, as events."""
    from dialogs.store import Actor, AuditEvent
    by = Actor("aad-mette", "Mette")
    await store.record(AuditEvent(code, "gate_start", None, by, at, "a:gate", details={
        "from": source, "to": source + 1, "skipped_open": 0, "awaiting_skip": False}))
    if answers:
        await store.record(AuditEvent(code, "gate_answer", None, by, at, "a:gate", details={"answers": answers}))


async def load_into_postgresql(data_dir: Path, url: str) -> None:
    """A data dir (written by a test, say tests/portfolio_data.py) copied into an empty PostgreSQL database as
    `admin migrate` copies it, verified: a test on PostgreSQL then starts from the same data."""
    from bot.migrate import to_postgresql
    from bot.pg_store import PgStore
    from bot.store import TinyStore

    source, target = TinyStore(data_dir), PgStore(url)
    try:
        await to_postgresql(source, target)
    finally:
        await target.aclose()
        source.close()
