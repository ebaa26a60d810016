"""The fast Connector client (bot/connector.py) against botbuilder's own ConnectorClient, both talking to one
recording Bot Connector on 127.0.0.1: the same requests on the wire, the same answers, errors as
ConnectorError, one keep-alive connection, tokens fetched once.

Both clients are built the way the running bot builds them: botbuilder's `_ConnectorFactoryImpl` (what
CloudAdapter gets from ConfigurationBotFrameworkAuthentication) and our `_FastConnectorFactory` wrapped
around that same factory. Retries through NudgeSender are in test_nudges.py."""
from __future__ import annotations

import asyncio
import json
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace

import aiohttp
import pytest
from aiohttp import web
from botbuilder.core import CardFactory, MessageFactory
from botbuilder.schema import (
    Activity,
    ChannelAccount,
    ConversationAccount,
    ConversationParameters,
    ConversationResourceResponse,
    Mention,
    TextFormatTypes,
)
from botframework.connector.auth import (
    AuthenticationConstants,
    MicrosoftAppCredentials,
    PasswordServiceClientCredentialFactory,
    ServiceClientCredentialsFactory,
)
from botframework.connector.auth._connector_factory_impl import _ConnectorFactoryImpl

import bot.connector as connector_module
from bot.connector import ConnectorError, FastAuthentication, _FastConnectorFactory

APP_ID = "0b7f3c1e-5a2d-4c8e-9f10-123456789abc"
THREAD = "19:abc@thread.tacv2;messageid=123"  # a Teams channel thread: ':', '@', ';' and '=' to escape
PERSONAL = "a:1Xyz"  # a Teams personal chat


# -- the recording Bot Connector ---------------------------------------------------------------------
@dataclass
class Seen:
    method: str
    raw_path: str  # as sent, percent-encoding included
    path: str  # decoded
    query: str
    headers: dict  # case-insensitive (aiohttp's CIMultiDictProxy)
    body: object  # parsed JSON; None without a body
    connection: object  # the server side of the TCP connection (kept here, so identities stay unique)


class RecordingConnector:
    """Records every request and answers like the Bot Connector, or with the scripted answers first."""

    def __init__(self):
        self.seen: list[Seen] = []
        self.scripted: list[tuple[int, bytes, dict]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    def answer(self, status: int, body: bytes | str = b"", headers: dict | None = None) -> None:
        self.scripted.append((status, body.encode() if isinstance(body, str) else body, headers or {}))

    def connections(self, seen: list[Seen] | None = None) -> int:
        return len({id(s.connection) for s in (self.seen if seen is None else seen)})

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.seen.append(Seen(request.method, request.raw_path, request.path, request.query_string,
                              request.headers, json.loads(raw) if raw else None, request.transport))
        if self.scripted:
            status, body, headers = self.scripted.pop(0)
            return web.Response(status=status, body=body, headers=headers)
        if request.method == "DELETE":
            return web.Response(status=200)
        if request.path == "/v3/conversations":
            return web.json_response({"id": "a:new-conversation", "activityId": "act-1", "serviceUrl": self.url},
                                     status=201)
        if request.method == "PUT":
            return web.json_response({"id": request.path.rsplit("/", 1)[1]})
        return web.json_response({"id": f"reply-{len(self.seen)}"})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/"


@pytest.fixture
async def connector():
    recorder = RecordingConnector()
    await recorder.start()
    yield recorder
    await recorder.runner.cleanup()


@pytest.fixture
async def fast_auth():
    """Only FastAuthentication's session and token caches are used here, so no inner authentication."""
    auth = FastAuthentication(None)
    yield auth
    await auth.close()


# -- credentials and clients ---------------------------------------------------------------------------
class FixedTokenCredentials(MicrosoftAppCredentials):
    """An app's credentials without MSAL: a fetch returns `token` (counted); the first `fail_first` raise."""

    def __init__(self, fail_first: int = 0):
        super().__init__(APP_ID, "secret")
        self.token = "token-1"
        self.fetches = 0
        self.fail_first = fail_first

    def get_access_token(self, force_refresh: bool = False) -> str:
        if self.fail_first:
            self.fail_first -= 1
            raise PermissionError("Failed to get access token")
        self.fetches += 1
        return self.token


class GivenCredentials(ServiceClientCredentialsFactory):
    def __init__(self, credentials: MicrosoftAppCredentials):
        self.credentials = credentials

    async def is_valid_app_id(self, app_id: str) -> bool:
        return app_id == APP_ID

    async def is_authentication_disabled(self) -> bool:
        return False

    async def create_credentials(self, app_id, oauth_scope, login_endpoint, validate_authority):
        return self.credentials


def botbuilder_factory(credentials: FixedTokenCredentials | None = None) -> _ConnectorFactoryImpl:
    """What ConfigurationBotFrameworkAuthentication hands CloudAdapter; no credentials: local mode, no app id."""
    if credentials is None:
        return _ConnectorFactoryImpl("", AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE,
                                     AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL, True,
                                     PasswordServiceClientCredentialFactory("", ""))
    return _ConnectorFactoryImpl(APP_ID, AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE,
                                 AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL, True,
                                 GivenCredentials(credentials))


async def botbuilder_client(url: str, credentials: FixedTokenCredentials | None = None):
    return await botbuilder_factory(credentials).create(url)


async def fast_client(auth: FastAuthentication, url: str, credentials: FixedTokenCredentials | None = None,
                      retries: bool = False):
    """A client as the bot gets one; without retries (as for proactive sends) unless asked, so that each test
    here sees one request per call. The retries of replies within a turn are tested below and in test_ops."""
    return await _FastConnectorFactory(botbuilder_factory(credentials), auth, retries=retries).create(url)


# -- what the bot sends ----------------------------------------------------------------------------------
def _addressed(message: Activity, conversation_id: str, kind: str) -> Activity:
    """What TurnContext adds from the conversation reference before CloudAdapter sends."""
    message.channel_id = "msteams"
    message.service_url = "https://smba.trafficmanager.net/emea/"
    message.conversation = ConversationAccount(id=conversation_id, conversation_type=kind, tenant_id="tenant-1")
    message.from_property = ChannelAccount(id="28:" + APP_ID, name="Implementeringsassistent")
    message.recipient = ChannelAccount(id="29:mette", name="Mette Sørensen", aad_object_id="aad-mette")
    message.locale = "da-DK"
    message.timestamp = datetime(2026, 11, 27, 9, 30, 0, 123000, tzinfo=UTC)
    return message


def markdown_text() -> Activity:
    message = MessageFactory.text("**Fase 1: Opstart** – åbne opgaver for Ærø Kommune\n\n"
                                  "1. Udpeg projektejer _(Søren)_")
    message.text_format = TextFormatTypes.markdown
    return _addressed(message, PERSONAL, "personal")


def card_with_mention() -> Activity:
    card = {"type": "AdaptiveCard", "version": "1.5", "fallbackText": "Udpeg projektejer – udført",
            "body": [{"type": "TextBlock", "text": "Fase 1: Opstart", "weight": "Bolder", "wrap": True},
                     {"type": "TextBlock", "text": "1. Udpeg projektejer ✅", "wrap": True}],
            "actions": [{"type": "Action.Submit", "title": "Udført",
                         "data": {"action": "done", "municipality": "0751", "task": "udpeg-projektejer", "p": 1}}]}
    message = MessageFactory.attachment(CardFactory.adaptive_card(card))
    message.text = "<at>Lars Ørsted</at> «Udpeg projektejer» er markeret som udført."
    message.entities = [Mention(mentioned=ChannelAccount(id="29:lars", name="Lars Ørsted"),
                                text="<at>Lars Ørsted</at>", type="mention")]
    message.reply_to_id = "1700000000000"
    return _addressed(message, THREAD, "channel")


def redrawn_card() -> Activity:
    card = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "Åbne opgaver: 0"}]}
    message = MessageFactory.attachment(CardFactory.adaptive_card(card))
    message.id = "1700000000001"
    return _addressed(message, THREAD, "channel")


def new_conversation() -> ConversationParameters:
    return ConversationParameters(is_group=False, bot=ChannelAccount(id="28:" + APP_ID),
                                  members=[ChannelAccount(id="29:mette", name="Mette Sørensen")], tenant_id="tenant-1",
                                  channel_data={"tenant": {"id": "tenant-1"}}, activity=markdown_text())


# The five calls CloudAdapter makes, with what the bot passes them.
OPERATIONS = {
    "reply_to_activity": lambda c: c.conversations.reply_to_activity(THREAD, "1700000000000", card_with_mention()),
    "send_to_conversation": lambda c: c.conversations.send_to_conversation(PERSONAL, markdown_text()),
    "update_activity": lambda c: c.conversations.update_activity(THREAD, "1700000000001", redrawn_card()),
    "delete_activity": lambda c: c.conversations.delete_activity(PERSONAL, "1700000000002"),
    "create_conversation": lambda c: c.conversations.create_conversation(new_conversation()),
}


async def run_all(client, connector: RecordingConnector) -> tuple[list, list[Seen]]:
    """Every operation once, in order: (the results as JSON, the requests on the wire)."""
    connector.seen.clear()
    results = []
    for call in OPERATIONS.values():
        result = await call(client)
        results.append(None if result is None else result.serialize())
    assert len(connector.seen) == len(OPERATIONS)
    return results, list(connector.seen)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- 1. the same requests on the wire --------------------------------------------------------------------
@pytest.mark.parametrize("with_app_id", [False, True], ids=["no-app-id", "app-id"])
async def test_same_requests_and_answers_as_botbuilder(connector, fast_auth, with_app_id):
    theirs_results, theirs = await run_all(
        await botbuilder_client(connector.url, FixedTokenCredentials() if with_app_id else None), connector)
    ours_results, ours = await run_all(
        await fast_client(fast_auth, connector.url, FixedTokenCredentials() if with_app_id else None), connector)

    expected_authorization = "Bearer token-1" if with_app_id else None
    for name, them, us in zip(OPERATIONS, theirs, ours, strict=True):
        assert (us.method, us.path, us.query) == (them.method, them.path, them.query), name
        assert us.body == them.body, name
        assert us.headers.get("Content-Type") == them.headers.get("Content-Type"), name
        if them.body is not None:
            assert us.headers["Content-Type"].split(";")[0] == "application/json", name
        assert us.headers.get("Authorization") == them.headers.get("Authorization") == expected_authorization, name
    assert ours_results == theirs_results
    assert ours_results[0] == {"id": "reply-1"} and ours_results[2] == {"id": "1700000000001"}
    assert connector.connections(ours) == 1, "all calls of the fast client share one keep-alive connection"


async def test_the_bodies_hold_what_the_bot_wrote(connector, fast_auth):
    """Not two equally broken serialisations: the Danish letters, the card and the mention arrive intact."""
    await OPERATIONS["reply_to_activity"](await fast_client(fast_auth, connector.url))
    body = connector.seen[0].body
    assert body["text"] == "<at>Lars Ørsted</at> «Udpeg projektejer» er markeret som udført."
    assert body["entities"] == [{"type": "mention", "text": "<at>Lars Ørsted</at>",
                                 "mentioned": {"id": "29:lars", "name": "Lars Ørsted"}}]
    attachment, = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["content"]["actions"][0]["data"]["task"] == "udpeg-projektejer"
    assert body["replyToId"] == "1700000000000" and body["conversation"]["id"] == THREAD
    assert body["timestamp"] == "2026-11-27T09:30:00.123Z"


async def test_entity_properties_that_msrest_drops_reach_the_wire(connector, fast_auth):
    """The documented difference (test_wire.py): an Entity read from JSON keeps its properties in
    additional_properties, which msrest leaves out; ours sends them. Everything else is equal."""
    def incoming_style() -> Activity:
        return Activity().deserialize({"type": "message", "text": "<at>Bot</at> hej", "entities": [
            {"type": "mention", "text": "<at>Bot</at>", "mentioned": {"id": "28:bot", "name": "Bot"}}]})

    await (await botbuilder_client(connector.url)).conversations.send_to_conversation(PERSONAL, incoming_style())
    await (await fast_client(fast_auth, connector.url)).conversations.send_to_conversation(PERSONAL, incoming_style())
    theirs, ours = connector.seen[0].body, connector.seen[1].body
    assert theirs["entities"] == [{"type": "mention"}]
    assert ours["entities"] == [{"type": "mention", "text": "<at>Bot</at>",
                                 "mentioned": {"id": "28:bot", "name": "Bot"}}]
    assert {k: v for k, v in ours.items() if k != "entities"} == {k: v for k, v in theirs.items() if k != "entities"}


async def test_conversation_ids_stay_percent_encoded_like_botbuilder(connector, fast_auth):
    _, theirs = await run_all(await botbuilder_client(connector.url), connector)
    _, ours = await run_all(await fast_client(fast_auth, connector.url), connector)
    assert theirs[0].raw_path == "/v3/conversations/19%3Aabc%40thread.tacv2%3Bmessageid%3D123/activities/1700000000000"
    assert theirs[1].raw_path == "/v3/conversations/a%3A1Xyz/activities"
    assert [s.raw_path for s in ours] == [s.raw_path for s in theirs]


async def test_reply_names_its_conversation_in_a_header_like_botbuilder(connector, fast_auth):
    await OPERATIONS["reply_to_activity"](await botbuilder_client(connector.url))
    await OPERATIONS["reply_to_activity"](await fast_client(fast_auth, connector.url))
    theirs, ours = connector.seen
    assert theirs.headers["x-ms-conversation-id"] == THREAD
    assert ours.headers.get("x-ms-conversation-id") == THREAD


# -- 2. errors -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("header, expected", [("7", 7.0), ("Fri, 27 Nov 2026 09:30:07 GMT", None), (None, None)],
                         ids=["seconds", "http-date", "missing"])
async def test_429_is_a_connector_error_with_its_retry_after(connector, fast_auth, header, expected):
    connector.answer(429, '{"error":{"code":"TooManyRequests"}}', {"Retry-After": header} if header else {})
    with pytest.raises(ConnectorError) as raised:
        await OPERATIONS["send_to_conversation"](await fast_client(fast_auth, connector.url))
    assert raised.value.status == 429
    assert raised.value.retry_after == expected


async def test_500_with_a_text_body_names_the_start_of_the_body(connector, fast_auth):
    connector.answer(500, "upstream timed out after 30 s; request 7f3a " + "x" * 5000, {"Content-Type": "text/plain"})
    with pytest.raises(ConnectorError) as raised:
        await OPERATIONS["send_to_conversation"](await fast_client(fast_auth, connector.url))
    assert raised.value.status == 500 and raised.value.retry_after is None
    assert "500" in str(raised.value) and "upstream timed out after 30 s; request 7f3a" in str(raised.value)
    assert len(str(raised.value)) < 300, "a long body is cut, not logged whole"


@pytest.mark.parametrize("status", [403, 404])
async def test_gone_conversation_is_a_connector_error_with_its_status_for_every_call(connector, fast_auth, status):
    client = await fast_client(fast_auth, connector.url)
    for name, call in OPERATIONS.items():
        connector.answer(status, '{"error":{"code":"ConversationNotFound","message":"Conversation not found."}}',
                         {"Content-Type": "application/json"})
        with pytest.raises(ConnectorError) as raised:
            await call(client)
        assert raised.value.status == status, name


@pytest.mark.parametrize("body", [b"", b"  \n", b"OK", b"[1, 2]", b"null", b'"id"', b"\xc3("],
                         ids=["empty", "blank", "text", "list", "null", "string", "bad-utf8"])
async def test_success_with_an_odd_body_still_answers(connector, fast_auth, body):
    client = await fast_client(fast_auth, connector.url)
    for _ in OPERATIONS:
        connector.answer(200, body, {"Content-Type": "application/json"})
    results = {name: await call(client) for name, call in OPERATIONS.items()}
    assert results["reply_to_activity"].id == "" and results["send_to_conversation"].id == ""
    assert results["update_activity"].id == "1700000000001"
    assert results["delete_activity"] is None
    assert isinstance(results["create_conversation"], ConversationResourceResponse)
    assert results["create_conversation"].id is None


async def test_refused_connection_is_an_aiohttp_client_error(fast_auth):
    """What NudgeSender treats as a failed delivery (no status: retried on a later sweep)."""
    client = await fast_client(fast_auth, f"http://127.0.0.1:{closed_port()}/")
    with pytest.raises(aiohttp.ClientError) as raised:
        await OPERATIONS["send_to_conversation"](client)
    assert not isinstance(raised.value, ConnectorError) and getattr(raised.value, "status", None) is None


# -- 3. an error does not poison the session; the client itself never retries ----------------------------
@pytest.mark.parametrize("status", [429, 500, 404])
async def test_after_an_error_the_next_call_succeeds_on_the_same_connection(connector, fast_auth, status):
    client = await fast_client(fast_auth, connector.url)
    connector.answer(status, '{"error":{"code":"Failure"}}', {"Retry-After": "1"})
    with pytest.raises(ConnectorError):
        await OPERATIONS["send_to_conversation"](client)
    result = await OPERATIONS["reply_to_activity"](client)
    assert result.id == "reply-2"
    assert connector.seen[1].body["text"].startswith("<at>Lars Ørsted</at>")
    later = await fast_client(fast_auth, connector.url)  # the next turn's client: same session
    assert (await OPERATIONS["update_activity"](later)).id == "1700000000001"
    assert connector.connections() == 1


async def test_a_failed_call_is_sent_once(connector, fast_auth):
    """Without retries (proactive sends: NudgeSender retries with its own backoff and budget): one request per call."""
    client = await fast_client(fast_auth, connector.url)
    for name, call in OPERATIONS.items():
        connector.seen.clear()
        connector.answer(503, "Service Unavailable", {"Retry-After": "0"})
        with pytest.raises(ConnectorError):
            await call(client)
        assert len(connector.seen) == 1, name


# -- 4. tokens -------------------------------------------------------------------------------------------
async def test_twenty_calls_fetch_the_token_once(connector, fast_auth):
    credentials = FixedTokenCredentials()
    calls = [OPERATIONS[name] for name in OPERATIONS] * 4
    clients = [await fast_client(fast_auth, connector.url, credentials) for _ in range(4)]  # four turns
    await asyncio.gather(*(call(clients[i % 4]) for i, call in enumerate(calls)))
    assert len(connector.seen) == 20
    assert credentials.fetches == 1
    assert {s.headers["Authorization"] for s in connector.seen} == {"Bearer token-1"}


async def test_the_token_is_fetched_again_after_ten_minutes(connector, fast_auth, monkeypatch):
    now = [50_000.0]
    monkeypatch.setattr(connector_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    credentials = FixedTokenCredentials()
    client = await fast_client(fast_auth, connector.url, credentials)
    send = OPERATIONS["send_to_conversation"]
    await send(client)
    credentials.token = "token-2"  # what MSAL would answer now
    now[0] += connector_module.TOKEN_REUSE_SECONDS - 1
    await send(client)
    now[0] += 2
    await send(client)
    assert [s.headers["Authorization"] for s in connector.seen] == ["Bearer token-1"] * 2 + ["Bearer token-2"]
    assert credentials.fetches == 2


async def test_a_failed_token_fetch_is_not_cached(connector, fast_auth):
    credentials = FixedTokenCredentials(fail_first=1)
    client = await fast_client(fast_auth, connector.url, credentials)
    with pytest.raises(PermissionError):
        await OPERATIONS["send_to_conversation"](client)
    assert connector.seen == []
    await OPERATIONS["send_to_conversation"](client)
    assert connector.seen[0].headers["Authorization"] == "Bearer token-1"


async def test_the_first_call_soon_after_boot_carries_a_token(connector, fast_auth, monkeypatch):
    monkeypatch.setattr(connector_module, "time", SimpleNamespace(monotonic=lambda: 42.0))  # 42 s after boot
    credentials = FixedTokenCredentials()
    await OPERATIONS["send_to_conversation"](await fast_client(fast_auth, connector.url, credentials))
    assert connector.seen[0].headers["Authorization"] == "Bearer token-1"


async def test_a_reply_client_retries_429_after_its_retry_after_and_5xx_then_delivers(connector, fast_auth):
    client = await fast_client(fast_auth, connector.url, retries=True)
    connector.answer(429, '{"error":{"code":"TooManyRequests"}}', {"Retry-After": "0"})
    connector.answer(502, "Bad Gateway")
    started = time.monotonic()
    result = await OPERATIONS["send_to_conversation"](client)
    assert result.id and len(connector.seen) == 3
    assert time.monotonic() - started < 2  # Retry-After 0, then the first pause (0.25 s)


async def test_a_reply_client_does_not_retry_what_the_connector_refused(connector, fast_auth):
    client = await fast_client(fast_auth, connector.url, retries=True)
    connector.answer(400, '{"error":{"code":"BadArgument"}}')
    with pytest.raises(ConnectorError) as raised:
        await OPERATIONS["send_to_conversation"](client)
    assert raised.value.status == 400 and len(connector.seen) == 1
