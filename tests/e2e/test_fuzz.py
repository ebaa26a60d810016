r"""Fuzzing POST /api/messages: whatever arrives, the bot answers below 500 and logs no ERROR.

One real in-process server (aiohttp + CloudAdapter + TinyStore) serves every example. It runs on its own
event loop in a background thread; hypothesis' synchronous test body hands each POST to that loop with
`asyncio.run_coroutine_threadsafe`. Replies go to an in-test Connector that accepts any path, so a failed
delivery (logged by `bot.app` as "turn failed") can only mean the bot itself broke.

Bound: FUZZ_EXAMPLES (default 150) examples, no per-example deadline; about 2 s here.

Kept out of the fuzz: a serviceUrl string naming another host (the reply then cannot be delivered, and
bot.app rightly logs that at ERROR). The plain tests at the bottom pin what earlier versions got wrong:
deep nesting in a body with \u escapes (the surrogate check recursed: 500), JSON nested past the recursion limit (was 500), UTF-8-encoded lone surrogates (were accepted),
lone surrogates in ids and names (the turn failed), non-string serviceUrl (msrest made "5" of 5), other
activity types without serviceUrl (500) and unhandled invokes (501).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field

import pytest
from aiohttp import ClientTimeout, web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness import BOT_ID, OTHER_TENANT, TENANT, BotServer, Connector, Person, channel, group_chat, personal

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
MAX_FUZZ_DEPTH = 10_000  # well past Python's recursion limit

# -- the server, on its own loop in a background thread ------------------------------------------------


class AnyPathConnector(Connector):
    """The harness Connector, but answering on any path: fuzzed conversation and activity ids end up in the
    reply URL (quoted), and a real Connector would take them; a 404 here would be the test's fault."""

    async def start(self) -> None:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post(r"/{tail:[\s\S]*}", self._post)  # ids may hold a newline
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/"


class ErrorRecords(logging.Handler):
    """Every ERROR (or worse) record from any logger: aiohttp's 'Error handling request', bot.app's 'turn
    failed', asyncio's 'Task exception was never retrieved', botbuilder's own."""

    def __init__(self):
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def describe(self, since: int = 0) -> list[str]:
        out = []
        for r in self.records[since:]:
            exc = r.exc_info[1] if r.exc_info else None
            out.append(f"{r.name}: {r.getMessage()}" + (f" [{type(exc).__name__}: {str(exc)[:200]}]" if exc else ""))
        return out


@dataclass
class Live:
    loop: asyncio.AbstractEventLoop
    server: BotServer
    errors: ErrorRecords
    tried: int = 0
    failures: list[str] = field(default_factory=list)

    def run(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _post(self, data: bytes, content_type: str = "application/json") -> tuple[int, str]:
        s = self.server
        async with s.session.post(f"{s.url}/api/messages", data=data, headers={"Content-Type": content_type},
                                  timeout=ClientTimeout(total=20)) as r:
            return r.status, (await r.read())[:300].decode("utf-8", "replace")

    def post(self, data: bytes, content_type: str = "application/json") -> tuple[int, str]:
        return self.run(self._post(data, content_type))


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fuzz-bot-loop", daemon=True)
    thread.start()
    server = BotServer(data_dir=tmp_path_factory.mktemp("fuzz") / "data", connector=AnyPathConnector())
    errors = ErrorRecords()
    root = logging.getLogger()
    root.addHandler(errors)
    live = Live(loop, server, errors)
    try:
        live.run(server.start())
        # Registered places, so fuzzed messages that reuse these conversations reach the task dialogs too.
        live.run(server.say("tilmeld Aarhus", personal(1)))
        live.run(server.say("tilmeld Odense", channel()))
        live.run(server.say("tilmeld 0101", group_chat(1)))
        assert errors.records == [], errors.describe()
        yield live
    finally:
        root.removeHandler(errors)
        live.run(server.close())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


# -- strategies ------------------------------------------------------------------------------------------

MISSING = object()
COMMANDS = [
    "status", "hjælp", "help", "hvad skal vi nu?", "what's next", "tilmeld Aarhus", "register Odense", "kommune 751",
    "tilmeld Atlantis", "marker udpeg projektleder som udført", "done 1", "done 999", "fortryd 1",
    "fortryd udpeg projektleder", "historik", "hvem markerede udpeg projektleder", "hvad er go-live",
    "fase 2", "temaet viden", "english please", "dansk tak", "hvad betyder idriftsættelse",
    "sammenlign go-live og idriftsættelse", "marker projekt som udført", "vis historik for as-is",
]
CONTROL = "".join(map(chr, [*range(0, 32), 127, *range(0x80, 0xA0), 0x200B, 0x200E, 0x202E, 0x2028, 0xFEFF]))
SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)

small_text = st.text(max_size=12)
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), small_text)
any_json = st.recursive(json_scalar, lambda c: st.lists(c, max_size=4) | st.dictionaries(small_text, c, max_size=4),
                        max_leaves=8)
not_a_string = any_json.filter(lambda v: not isinstance(v, str))


@st.composite
def huge(draw, alphabet=None) -> str:
    """Up to 20 kB, built by repetition so hypothesis need not draw 20 000 characters one by one."""
    unit = draw(st.text(alphabet=alphabet, min_size=1, max_size=40) if alphabet is not None else st.sampled_from(
        ["x", "æøå ", "<at>", "<at>Bot</at> ", "🙂", "a\u0301", "marker ", "\u202e", " ", "\x00", "<b>", "&amp;"]))
    return (unit * draw(st.integers(1, 20_000 // len(unit))))[:20_000]


def texts(surrogates: bool = True) -> st.SearchStrategy[str]:
    options = [
        st.sampled_from(COMMANDS),
        st.builds(lambda c, noise, at_end: c + noise if at_end else noise + c,
                  st.sampled_from(COMMANDS), st.text(max_size=8), st.booleans()),
        st.text(max_size=60),  # any code point but surrogates, control characters included
        st.text(alphabet=CONTROL, max_size=30),
        huge(),
        huge(alphabet=st.characters(codec="utf-8")),
    ]
    if surrogates:
        options.append(st.builds(lambda a, s, b: a + s + b, st.sampled_from([*COMMANDS, ""]),
                                 st.text(alphabet=SURROGATES, min_size=1, max_size=3), small_text))
    return st.one_of(*options)


def maybe(valid: st.SearchStrategy) -> st.SearchStrategy:
    """A field is mostly plausible, sometimes missing, sometimes any JSON at all."""
    return st.one_of(valid, valid, valid, st.just(MISSING), any_json)


def ident() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(["aad-mette", "29:aad-x", "", "a:personal-1"]), st.text(max_size=20),
                     st.builds(str.__add__, small_text, st.text(alphabet=SURROGATES, min_size=1, max_size=2)))


CONVERSATIONS = [personal(1), personal(7), channel(), channel().thread(), group_chat(1), personal(2, OTHER_TENANT)]


@st.composite
def activities(draw, service_url: str) -> dict:
    where = draw(st.sampled_from(CONVERSATIONS))
    person = Person()
    fields = {
        "type": maybe(st.sampled_from(["message", "message", "conversationUpdate", "installationUpdate", "typing",
                                       "messageReaction", "event", "endOfConversation", "invoke", "", "MESSAGE", "trace"])),
        "id": maybe(ident()),
        "text": maybe(texts()),
        "textFormat": maybe(st.sampled_from(["plain", "markdown", "xml"])),
        "from": maybe(st.fixed_dictionaries({}, optional={
            "id": maybe(ident()), "name": maybe(ident() | texts(False)),
            "aadObjectId": maybe(ident())})),
        "recipient": maybe(st.fixed_dictionaries({}, optional={"id": maybe(st.just(BOT_ID)), "name": any_json})),
        "conversation": maybe(st.fixed_dictionaries({}, optional={
            "id": maybe(st.sampled_from([where.conversation_id, "a:personal-1", "19:general@thread.tacv2"])
                        | ident()),
            "conversationType": maybe(st.sampled_from(["personal", "channel", "groupChat", "meeting", ""])),
            "tenantId": maybe(st.sampled_from([TENANT, OTHER_TENANT, ""])),
            "isGroup": any_json})),
        "channelData": maybe(st.fixed_dictionaries({}, optional={
            "tenant": maybe(st.fixed_dictionaries({"id": maybe(st.sampled_from([TENANT, OTHER_TENANT, "x"]))})),
            "team": maybe(st.fixed_dictionaries({"id": maybe(st.sampled_from(["19:team-aarhus@thread.tacv2", ""]))})),
            "channel": maybe(st.fixed_dictionaries({"id": any_json})),
            "eventType": maybe(st.sampled_from(["teamMemberAdded", "channelCreated"])),
            "deep": any_json})),
        "entities": maybe(st.lists(st.one_of(
            st.fixed_dictionaries({"type": st.just("mention"), "text": st.sampled_from(["<at>Implementeringsassistent</at>", "", "<at>"]),
                                   "mentioned": maybe(st.fixed_dictionaries({"id": maybe(st.just(BOT_ID))}))}),
            st.fixed_dictionaries({"type": maybe(st.sampled_from(["clientInfo", "mention", ""]))},
                                  optional={"locale": any_json, "text": any_json, "mentioned": any_json}),
            any_json), max_size=4)),
        "membersAdded": maybe(st.lists(st.fixed_dictionaries({"id": maybe(st.sampled_from([BOT_ID, "29:someone"]))}),
                                       max_size=3)),
        "action": maybe(st.sampled_from(["add", "remove", "add-upgrade"])),
        "value": maybe(st.just("@@DEEP@@")),
        "name": maybe(st.sampled_from(["", "x", "application/search"])),
        "locale": maybe(st.one_of(st.sampled_from(["da-DK", "en-US", "en", "DA", "", "xx-YY"]), small_text)),
        # A URL of another host would make reply delivery fail, which bot.app rightly logs at ERROR.
        "serviceUrl": st.one_of(st.sampled_from([service_url, service_url.rstrip("/"), MISSING, None, "", "ftp://x",
                                                 "127.0.0.1", "http://"]), not_a_string),
        "timestamp": maybe(st.sampled_from(["2026-11-27T09:30:00Z", "not a date", ""])),
        "channelId": maybe(st.sampled_from(["msteams", "emulator", ""])),
    }
    base = {
        "type": "message", "id": "fuzz", "channelId": "msteams", "serviceUrl": service_url,
        "from": {"id": f"29:{person.aad_id}", "name": person.name, "aadObjectId": person.aad_id},
        "recipient": {"id": BOT_ID, "name": "Implementeringsassistent"},
        "conversation": {"id": where.conversation_id, "conversationType": where.kind, "tenantId": where.tenant_id},
        "channelData": {"tenant": {"id": where.tenant_id}, **({"team": {"id": where.team_id}} if where.team_id else {})},
        "locale": "da-DK", "text": "status",
    }
    activity = dict(base)
    for name in draw(st.sets(st.sampled_from(sorted(fields)), max_size=6)):
        value = draw(fields[name])
        if value is MISSING:
            activity.pop(name, None)
        else:
            activity[name] = value
    activity.update(draw(st.dictionaries(st.text(max_size=6), any_json, max_size=2)))  # unknown keys

    def strip(node):  # MISSING inside nested optional fields
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if v is not MISSING}
        if isinstance(node, list):
            return [strip(v) for v in node if v is not MISSING]
        return node

    return strip(activity)


def nested(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


@st.composite
def bodies(draw, service_url: str) -> tuple[bytes, dict]:
    """One POST body: the activity as JSON, \\u-escaped or raw UTF-8, lone surrogates as their raw bytes."""
    activity = draw(activities(service_url))
    encoding = draw(st.sampled_from(["escaped", "raw", "raw"]))
    text = json.dumps(activity, ensure_ascii=encoding == "escaped", allow_nan=True)
    if "@@DEEP@@" in text:
        text = text.replace('"@@DEEP@@"', nested(draw(st.integers(0, MAX_FUZZ_DEPTH)), draw(st.sampled_from(["list", "dict"]))))
    # surrogatepass: a lone surrogate becomes the 3 bytes ED A0 80.. - not UTF-8, but what a broken client sends.
    return text.encode("utf-8", "surrogatepass"), activity


def _summary(activity: dict) -> str:
    short = {k: (v[:60] + f"...({len(v)})" if isinstance(v, str) and len(v) > 60 else v) for k, v in activity.items()}
    return repr(short)[:600]


# -- the property ------------------------------------------------------------------------------------------


def test_fuzzed_activities_never_5xx_and_never_log_errors(live):
    url = live.server.connector.url
    started = time.monotonic()

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
                                     HealthCheck.function_scoped_fixture])
    @given(body=bodies(url))
    def check(body):
        data, activity = body
        before = len(live.errors.records)
        live.tried += 1
        status, answer = live.post(data)
        errors = live.errors.describe(before)
        if status >= 500 or errors:
            live.failures.append(f"{status} {errors} {_summary(activity)}")
        assert status < 500, f"POST answered {status} ({answer}) for {_summary(activity)}"
        assert not errors, f"ERROR logged for {_summary(activity)}: {errors}"

    try:
        check()
    finally:
        elapsed = time.monotonic() - started
        print(f"fuzz: {live.tried} activities, {len(live.failures)} failures, {elapsed:.1f} s")
        for failure in live.failures[:5]:
            print("  ", failure)


# -- plain checks ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [
    b"\xff\xfe not utf-8",
    b'{"type": "message", "text": "\xc3"}',  # a multi-byte sequence cut short
    b'{"type": "message", "text": "\xc0\xaf"}',  # overlong encoding of "/"
    b'{"type": "message", "text": "\xf5\x80\x80\x80"}',  # beyond U+10FFFF
    b'{"type": "message", "text": "\xed\xa0\x80"}',  # U+D800 encoded: json.loads(bytes) alone would accept it
], ids=["garbage", "truncated", "overlong", "beyond-unicode", "encoded-surrogate"])
def test_invalid_utf8_body_is_400(live, raw):
    before = len(live.errors.records)
    assert live.post(raw)[0] == 400
    assert live.errors.describe(before) == []


def test_utf8_encoded_lone_surrogate_in_a_whole_activity_is_400(live):
    activity = live.server.message("status", personal(1))
    raw = json.dumps(activity).replace('"status"', '"status \\ud800"').encode()
    raw = raw.replace(b"\\ud800", b"\xed\xa0\x80")
    assert b"\xed\xa0\x80" in raw
    assert live.post(raw)[0] == 400


@pytest.mark.parametrize("depth", [10_000, 2_000, 1_000])
@pytest.mark.parametrize("kind", ["list", "dict"])
def test_json_nesting_depth_is_a_4xx(live, depth, kind):
    """Was: json.loads raised RecursionError (not caught) -> aiohttp answered 500 and logged it at ERROR."""
    activity = live.server.message("status", personal(1))
    activity["value"] = "@@DEEP@@"
    raw = json.dumps(activity).replace('"@@DEEP@@"', nested(depth, kind)).encode()
    assert len(raw) < 256 * 1024  # under MAX_BODY: the depth, not the size, is what is tested
    before = len(live.errors.records)
    status, _ = live.post(raw)
    assert 400 <= status < 500, status
    assert live.errors.describe(before) == []


def test_bare_deeply_nested_body_is_400(live):
    for depth in (800, 10_000):
        for kind in ("list", "dict"):
            before = len(live.errors.records)
            status, _ = live.post(nested(depth, kind).encode())
            assert status == 400, (depth, kind, status)
            assert live.errors.describe(before) == []


@pytest.mark.parametrize("depth", [400, 900])
def test_escaped_surrogate_pair_with_deep_nesting_is_not_5xx(live, depth):
    activity = live.server.message("status 🙂", personal(1))
    activity["value"] = "@@DEEP@@"
    raw = json.dumps(activity).replace('"@@DEEP@@"', nested(depth, "list")).encode()
    assert b"\\ud83d\\ude42" in raw
    before = len(live.errors.records)
    status, _ = live.post(raw)
    assert status < 500, status
    assert live.errors.describe(before) == []


@pytest.mark.parametrize("count", [100_000, 60_000])
@pytest.mark.parametrize("where", ["personal", "channel"])
def test_text_of_many_at_tags_gets_a_polite_reply_or_413_fast(live, count, where):
    place = personal(1) if where == "personal" else channel()
    activity = live.server.message("<at>" * count, place)
    sent = len(live.server.connector.sent)
    before = len(live.errors.records)
    started = time.monotonic()
    status, _ = live.post(json.dumps(activity).encode())
    elapsed = time.monotonic() - started
    assert elapsed < 2, f"{elapsed:.2f} s"
    assert status == 413 or status < 300, status
    if status < 300:
        replies = [a.get("text", "") for a in live.server.connector.sent[sent:]]
        assert len(replies) == 1 and replies[0] and "Traceback" not in replies[0], replies
    assert live.errors.describe(before) == []


IDENTITY_FIELDS = ["from.name", "from.aadObjectId", "conversation.id", "id"]


@pytest.mark.parametrize("field_name", IDENTITY_FIELDS)
def test_lone_surrogate_in_identity_field_is_refused_or_answered_never_a_failed_turn(live, field_name):
    """Was: UnicodeEncodeError when TinyStore wrote the name/id (ensure_ascii=False into a UTF-8 file) or when
    the reply URL was built from the activity id; 'turn failed' at ERROR and no reply."""
    activity = live.server.message("tilmeld Aarhus", personal(50 + IDENTITY_FIELDS.index(field_name)))
    *outer, inner = field_name.split(".")
    node = activity[outer[0]] if outer else activity
    node[inner] = node[inner] + "\ud800"
    sent = len(live.server.connector.sent)
    before = len(live.errors.records)
    status, _ = live.post(json.dumps(activity).encode())  # ensure_ascii: the body itself is valid UTF-8 JSON
    assert status < 500
    assert live.errors.describe(before) == []
    assert len(live.server.connector.sent) == sent + (1 if status < 300 else 0)
    assert not list(live.server.data_dir.glob("*.tmp")), "a failed write left a temp file behind"


@pytest.mark.parametrize("service_url", [5, [], {"url": "x"}, True], ids=["int", "list", "object", "bool"])
def test_wrong_typed_service_url_is_400(live, service_url):
    """Was: msrest turned 5 into "5", the turn ran and the reply went to '5/v3/...' ('turn failed' at ERROR)."""
    activity = live.server.message("status", personal(1))
    activity["serviceUrl"] = service_url
    before = len(live.errors.records)
    status, _ = live.post(json.dumps(activity).encode())
    assert status == 400, status
    assert live.errors.describe(before) == []


@pytest.mark.parametrize("kind", ["typing", "event", "messageReaction", "endOfConversation", "", "MESSAGE"])
@pytest.mark.parametrize("conversation", [False, True], ids=["bare", "with-conversation"])
def test_other_activity_types_without_service_url_are_not_5xx(live, kind, conversation):
    """Was: {"type": "typing"} reached CloudAdapter without a serviceUrl -> AttributeError -> 500."""
    body = {"type": kind, **({"conversation": {"id": "a:personal-1"}} if conversation else {})}
    before = len(live.errors.records)
    status, _ = live.post(json.dumps(body).encode())
    assert status < 500, status
    assert live.errors.describe(before) == []


def test_unhandled_invoke_is_not_5xx(live):
    """Was: botbuilder's ActivityHandler answered an invoke it has no handler for with 501."""
    activity = live.server.activity(personal(1), type="invoke", name="composeExtension/query", value={"x": 1})
    before = len(live.errors.records)
    status, _ = live.post(json.dumps(activity).encode())
    assert status < 500, status
    assert live.errors.describe(before) == []
