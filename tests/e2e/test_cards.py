"""Adaptive Cards end to end over HTTP, in Danish and in English: what the cards are, and what their buttons do.

1. Every card the bot sends (POSTed or PUT in place) validates against Microsoft's official Adaptive Card 1.5
   JSON schema, offline, and uses no feature newer than the version it declares.
2. Each card holds what its text twin (the reply text, which is also the card's fallbackText) holds.
3. Button presses arrive as Teams sends them: a message with no text, `value` = the button's data plus the
   card's inputs, and `replyToId` = the id of the message that carried the card. The bot redraws the pressed
   card with a PUT to /v3/conversations/<id>/activities/<replyToId> and sends a short note.
4. Stale and malformed presses get a polite reply, never a 5xx or an ERROR log, and write nothing.

The schema is vendored in tests/data/adaptive-card-1.5.schema.json (see ADAPTIVE-CARD-SCHEMA-LICENSE.txt there
for where it comes from, its licence and its hash): no network, so this test never skips. Expected texts are
the catalog wording (content/locale/*/LC_MESSAGES/messages.po, through tests/wording.py) and the model's own
text, read here from content/data/*.yaml independently of the product's loader.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
import referencing
import referencing.exceptions
import yaml

import bot.app
from tests.harness import (
    BOT_ID,
    OTHER_TENANT,
    BotServer,
    Person,
    Where,
    card_of,
    channel,
    group_chat,
    personal,
)
from tests.wording import cited, prefix, progress, status_of, t, tn

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "content" / "data"
SCHEMA_FILE = ROOT / "tests" / "data" / "adaptive-card-1.5.schema.json"
SCHEMA_SHA256 = "6f4f958f6c0937c04926e4c4928fdeee4a9955a879e3ed248ae4df7bea9abc35"  # also in the licence file
SCHEMA_ID = "http://adaptivecards.io/schemas/adaptive-card.json"
MAX_CARD_VERSION = (1, 5)  # what Teams renders on every client
TEAMS_MESSAGE_LIMIT = 28 * 1024  # Teams rejects bot messages above about 28 KB (413)
pytestmark = pytest.mark.both_stores  # the tests with a bot run on the data dir and on PostgreSQL (tests/conftest.py)


def _load(name: str) -> dict:
    return yaml.safe_load((DATA / name).read_text(encoding="utf-8"))


PHASES = {p["number"]: p for p in _load("phases.yaml")["phases"]}
TASKS_FILE = _load("tasks.yaml")
TASKS = TASKS_FILE["tasks"]
TERMS = {t["id"]: t for t in _load("glossary.yaml")["terms"]}
PHASE1 = [t["id"] for t in TASKS if t["phase"] == 1]
assert len(PHASE1) == 6 and len(PHASES[1]["success_criteria"]) == 4  # the model's Fase 1 Opstart

BOTH = pytest.mark.parametrize("lang", ["da", "en"])
LOCALE = {"da": "da-DK", "en": "en-US"}
AARHUS, ODENSE = "0751", "0461"
HOME = personal(1)
WHEN = {"da": "27. nov. 2026 kl. 10.30", "en": "27 Nov 2026, 10:30"}  # the harness clock in Copenhagen

SAY = {
    "da": {"register": "tilmeld Aarhus", "odense": "tilmeld Odense", "next": "hvad skal vi nu?",
           "next2": "hvad skal vi i fase 2?", "status": "status", "define": "hvad betyder go-live?",
           "yes13": "ja 1 3", "mark": "marker {task} som udført", "done_number": "udført {number}", "yes": "ja"},
    "en": {"register": "register Aarhus", "odense": "register Odense", "next": "what's next?",
           "next2": "what should we do in phase 2?", "status": "status", "define": "what does go-live mean?",
           "yes13": "yes 1 3", "mark": "mark {task} as done", "done_number": "done {number}", "yes": "yes"},
}

AARHUS_NAME = "Aarhus Kommune"


def phase_name(number: int, lang: str) -> str:
    return PHASES[number]["name"][lang]


def marked(lang: str, task_id: str, who: str = "Mette Hansen") -> str:
    """The short note a Done press (or a typed mark) gets: mark.done."""
    return t(lang, "mark.done", task=title(task_id, lang), who=who)


def phase1_progress(lang: str, done: int) -> str:
    """mark.progress for Fase 1: "Fase 1: Opstart – 3 af 6 opgaver udført."."""
    return t(lang, "mark.progress", number=1, phase=phase_name(1, lang), progress=progress(lang, done, len(PHASE1)))


@pytest.fixture(scope="module", autouse=True)
def _content_parsed_once(content):
    """Each server still builds its own app, catalogs, understander and store; only the parsed content is shared."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bot.app, "load_content", lambda *args, **kwargs: content)
        yield


@pytest.fixture(autouse=True)
def _no_error_logs(caplog):
    """No turn in this module may log an ERROR (a failed turn, an unhandled exception in aiohttp)."""
    caplog.set_level(logging.INFO)
    yield
    errors = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], errors


# -- people, places, requests ------------------------------------------------------------------------------------
def mette(lang: str = "da") -> Person:
    return Person(aad_id="aad-mette", name="Mette Hansen", locale=LOCALE[lang])


def john(lang: str = "da") -> Person:
    return Person(aad_id="aad-john", name="John Smith", locale=LOCALE[lang])


def title(task_id: str, lang: str) -> str:
    return next(t["title"][lang] for t in TASKS if t["id"] == task_id)


def task_id_of(title_text: str, lang: str) -> str:
    return next(t["id"] for t in TASKS if t["title"][lang] == title_text)


@dataclass
class Exchange:
    """What one request to /api/messages made the bot do."""

    status: int
    messages: list[dict]  # POSTed activities, in order
    ids: list[str]  # the id the Connector gave each of them (what a later press carries as replyToId)
    updates: list[dict]  # PUTs: cards redrawn in place

    @property
    def texts(self) -> list[str]:
        return [m.get("text") or "" for m in self.messages]

    @property
    def card(self) -> dict | None:
        cards = [c for c in map(card_of, self.messages) if c]
        assert len(cards) <= 1, cards
        return cards[0] if cards else None

    @property
    def card_id(self) -> str:
        (index,) = [i for i, m in enumerate(self.messages) if card_of(m)]
        return self.ids[index]


async def send(server, activity: dict | None = None, raw: bytes | None = None) -> Exchange:
    sent, updated = server.connector.sent, server.connector.updated
    before, before_updates = len(sent), len(updated)
    status = await server.post(activity, raw=raw)
    new = sent[before:]
    return Exchange(status, new, [f"reply-{before + i + 1}" for i in range(len(new))], updated[before_updates:])


async def ask(server, text: str, where: Where = HOME, who: Person | None = None, **fields) -> Exchange:
    activity = server.message(text, where, who or mette())
    activity.update(fields)
    done = await send(server, activity)
    assert done.status < 300 and len(done.messages) == 1, (text, done)
    return done


async def press(server, value: object, reply_to: str | None, where: Where = HOME, who: Person | None = None,
                mention: bool = False) -> Exchange:
    """A button press as Teams sends it: no text, the button's data (plus inputs) as `value`, and replyToId."""
    fields = {"value": value}
    if reply_to is not None:
        fields["replyToId"] = reply_to
    if mention:  # not what Teams sends for a press; only to reach the logic behind the channel filter
        fields["entities"] = [{"type": "mention", "text": "<at>Implementeringsassistent</at>",
                               "mentioned": {"id": BOT_ID, "name": "Implementeringsassistent"}}]
    return await send(server, server.activity(where, who or mette(), **fields))


async def twin(server, text: str, where: Where = HOME, who: Person | None = None) -> str:
    """The text twin: what a client without card support is sent. Asked in Teams (only Teams vouches for the
    tenant that owns the municipality), it is the card's fallbackText, or the text when no card was sent."""
    done = await ask(server, text, where, who)
    card = card_of(done.messages[0])
    return card["fallbackText"] if card else done.messages[0]["text"]


async def register(server, lang: str = "da", where: Where = HOME) -> None:
    done = await ask(server, SAY[lang]["register"], where, mette(lang))
    assert f"**{AARHUS_NAME}**" in (card_of(done.messages[0]) or {}).get("fallbackText", done.texts[0])


async def overall(server, lang: str = "da", where: Where = HOME) -> tuple[int, int, int]:
    """(current phase, done, total) from the status reply's text (status.header and status.total)."""
    status = status_of(lang, await twin(server, "status", where, mette(lang)), AARHUS_NAME)
    return (status.current, *status.total)




async def snapshot(server) -> str:
    """Everything the store keeps (state, audit trail, memory), once what it only cached is written: every file
    of the data dir, or every row of the database."""
    return await server.stored_text()


async def records(server) -> str:
    """What a stale press must leave alone: the audit trail and the stored state, less each conversation's last
    numbered list (redrawing a card renumbers its tasks, so «udført 3» then means what the redrawn card shows)."""
    return await server.stored_text(without=("lists",))


def put_path(conversation: str, activity_id: str) -> str:
    return f"/v3/conversations/{conversation}/activities/{activity_id}"


# -- reading cards -----------------------------------------------------------------------------------------------
def walk(node: object):
    """Every dict in a card, depth first, in document order."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def text_blocks(card: dict) -> list[str]:
    return [n["text"] for n in walk(card.get("body", [])) if n.get("type") == "TextBlock"]


def buttons(card: dict) -> list[dict]:
    return [n for n in walk(card) if n.get("type") == "Action.Submit"]


def rows(card: dict) -> list[tuple[list[str], list[dict]]]:
    """Each ColumnSet as (its TextBlocks, its buttons): a task line and the button beside it."""
    return [([n["text"] for n in walk(row) if n.get("type") == "TextBlock"], buttons(row))
            for row in walk(card.get("body", [])) if row.get("type") == "ColumnSet"]


def inputs(card: dict) -> list[dict]:
    return [n for n in walk(card.get("body", [])) if str(n.get("type", "")).startswith("Input.")]


def numbered(text: str) -> list[tuple[int, str]]:
    return [(int(n), line) for n, line in re.findall(r"^(\d+)\. (.+)$", text, flags=re.M)]


def task_lines(card: dict) -> list[str]:
    return [texts[0] for texts, _ in rows(card)]


def done_button(card: dict, task_id: str) -> dict:
    (button,) = [b for b in buttons(card) if b["data"].get("task") == task_id]
    return button


# -- 1. the official schema, offline -----------------------------------------------------------------------------
def _schema() -> dict:
    raw = SCHEMA_FILE.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == SCHEMA_SHA256, "tests/data/adaptive-card-1.5.schema.json was edited"
    return json.loads(raw)


def _no_network(uri: str):
    raise referencing.exceptions.NoSuchResource(ref=uri)  # every $ref must resolve inside the vendored file


@pytest.fixture(scope="module")
def schema() -> dict:
    return _schema()


@pytest.fixture(scope="module")
def validator(schema):
    formats = jsonschema.FormatChecker(formats=())
    formats.checks("uri")(lambda value: not isinstance(value, str) or bool(urlsplit(value).scheme))
    cls = jsonschema.validators.validator_for(schema)
    assert cls is jsonschema.Draft6Validator
    cls.check_schema(schema)
    return cls(schema, registry=referencing.Registry(retrieve=_no_network), format_checker=formats)


def schema_errors(validator, card: dict) -> list[str]:
    """The schema's complaints, each as "path: message" for the most specific failure (the schema wraps every
    element in anyOf over all element types, whose own message only repeats the whole element)."""

    def leaves(error):
        return [leaf for sub in error.context for leaf in leaves(sub)] if error.context else [error]

    def other_type(error) -> bool:
        """A failure of the alternative for another element type ("not a ColumnSet", "FactSet needs facts")."""
        if error.validator == "enum" and list(error.absolute_path)[-1:] == ["type"]:
            return True
        schema = error.schema if isinstance(error.schema, dict) else {}
        types = ((schema.get("properties") or {}).get("type") or {}).get("enum")
        return bool(types) and isinstance(error.instance, dict) and error.instance.get("type") not in types

    out = {}
    for error in validator.iter_errors(card):
        found = leaves(error)
        found = [e for e in found if not other_type(e)] or found
        deepest = max(len(e.absolute_path) for e in found)
        for leaf in found:
            if len(leaf.absolute_path) == deepest:
                text = f"{'/'.join(map(str, leaf.absolute_path)) or '(root)'}: {leaf.message[:160]}"
                out[text] = leaf.validator != "additionalProperties"  # the likeliest cause first
    return sorted(out, key=lambda text: (out[text], text))[:8]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def too_new(schema: dict, card: dict) -> list[str]:
    """Elements and properties whose schema `version` is above the card's own: a 1.5 client may drop them."""
    definitions = schema["definitions"]
    limit = _version(card["version"])

    def properties(name: str) -> dict:
        definition = definitions[name]
        out = {}
        for parent in definition.get("allOf", []):
            out.update(properties(parent["$ref"].rsplit("/", 1)[1]))
        out.update({k: v for k, v in definition.get("properties", {}).items() if v})  # `{}` only re-declares
        return out

    problems = []

    def check(node: dict, name: str, path: str) -> None:
        needs = definitions[name].get("version", "1.0")
        if _version(needs) > limit:
            problems.append(f"{path}: {name} needs {needs}")
        known = properties(name)
        for key in node:
            needs = known.get(key, {}).get("version", "1.0")
            if _version(needs) > limit:
                problems.append(f"{path}.{key} needs {needs}")
        for key in ("body", "items", "actions", "columns"):
            for index, child in enumerate(node.get(key) or []):
                check(child, "Column" if key == "columns" else child["type"], f"{path}/{key}/{index}")

    check(card, "AdaptiveCard", "")
    return problems


def test_vendored_schema_is_the_official_adaptive_card_1_5_schema(schema, validator):
    assert schema["$schema"] == "http://json-schema.org/draft-06/schema#"
    assert schema["id"] == SCHEMA_ID
    definitions = schema["definitions"]
    # 1.5 is the newest version it knows: rtl, Action.mode and the Table element came with 1.5, nothing is newer.
    assert definitions["AdaptiveCard"]["properties"]["rtl"]["version"] == "1.5"
    assert definitions["Extendable.Action"]["properties"]["mode"]["version"] == "1.5"
    assert "Table" in definitions
    versions = {n["version"] for n in walk(schema) if isinstance(n.get("version"), str)}
    assert max(versions, key=_version) == "1.5"
    # Offline: every reference points inside the file.
    refs = {n["$ref"] for n in walk(schema) if isinstance(n.get("$ref"), str)}
    assert refs and all(ref.startswith("#/definitions/") for ref in refs)
    # Not vacuous: it accepts a small valid card and rejects what Teams would refuse to render.
    good = {"type": "AdaptiveCard", "$schema": SCHEMA_ID, "version": "1.5",
            "body": [{"type": "TextBlock", "text": "Hej", "wrap": True},
                     {"type": "Input.Toggle", "id": "c1", "title": "Et kriterium", "value": "false"}],
            "actions": [{"type": "Action.Submit", "title": "Gem", "data": {"a": "gate"}}]}
    assert schema_errors(validator, good) == []
    bad = [
        {**good, "body": [{"type": "TextBlock", "wrap": True}]},  # a TextBlock needs text
        {**good, "body": [{"type": "TextBlock", "text": "x", "colour": "red"}]},  # unknown property
        {**good, "body": [{"type": "Input.Toggle", "id": "c1"}]},  # a toggle needs a title
        {**good, "body": [{"type": "Input.Text", "title": "x"}]},  # an input needs an id
        {**good, "body": [{"type": "Button", "text": "x"}]},  # no such element
        {**good, "actions": [{"type": "Action.Submit", "title": "x", "data": [1]}]},  # data is an object or a string
        {**good, "body": [{"type": "ColumnSet", "columns": [{"type": "Column", "items": [], "spacing": "huge"}]}]},
        {**good, "body": [{"type": "FactSet", "facts": [{"title": "x"}]}]},  # a fact needs a value
        {**good, "$schema": "adaptive-card.json"},  # $schema must be a URI
    ]
    for card in bad:
        assert schema_errors(validator, card), f"the schema accepted {card}"
    assert too_new(schema, {**good, "version": "1.4", "rtl": True}) == [".rtl needs 1.5"]


async def _card_tour(server, lang: str) -> dict[str, dict]:
    """Drives the bot through every kind of card it sends; returns a named example of each."""
    who = mette(lang)
    await register(server, lang)
    cards = {"status": (await ask(server, SAY[lang]["status"], HOME, who)).card}
    shown = await ask(server, SAY[lang]["next"], HOME, who)
    cards["next"] = shown.card
    cards["next phase 2"] = (await ask(server, SAY[lang]["next2"], HOME, who)).card
    defined = await ask(server, SAY[lang]["define"], HOME, who)
    cards["define"] = defined.card
    related = buttons(defined.card)[0]["data"]
    cards["define via related button"] = (await press(server, related, defined.card_id, HOME, who)).card
    first = await press(server, done_button(shown.card, PHASE1[0])["data"], shown.card_id, HOME, who)
    cards["next redrawn after a press"] = first.updates[0]["attachments"][0]["content"]
    again = await press(server, done_button(shown.card, PHASE1[0])["data"], shown.card_id, HOME, who)
    cards["next redrawn after a stale press"] = again.updates[0]["attachments"][0]["content"]
    for task in PHASE1[1:-1]:
        await press(server, done_button(shown.card, task)["data"], shown.card_id, HOME, who)
    last = await press(server, done_button(shown.card, PHASE1[-1])["data"], shown.card_id, HOME, who)
    cards["self-check started by the last Fase 1 task"] = last.card
    cards["status during the self-check"] = (await ask(server, SAY[lang]["status"], HOME, who)).card
    cards["self-check after a typed answer"] = (await ask(server, SAY[lang]["yes13"], HOME, who)).card
    value = {**buttons(last.card)[0]["data"], "c1": "true", "c2": "false", "c3": "true", "c4": "false",
             "note": "Økonomiudvalget <b>mangler</b> *stadig* at [beslutte](x)"}
    saved = await press(server, value, last.card_id, HOME, who)
    cards["self-check redrawn after a save"] = saved.updates[0]["attachments"][0]["content"]
    assert all(cards.values()), [name for name, card in cards.items() if not card]
    return cards


@BOTH
async def test_every_card_the_bot_sends_is_a_valid_adaptive_card_1_5(server, schema, validator, lang):
    named = await _card_tour(server, lang)
    # Every card attachment that went out, POSTed or PUT, not only the named ones.
    sent = [(f"POST {m['_path']}", m) for m in server.connector.sent] + \
           [(f"PUT {m['_path']}", m) for m in server.connector.updated]
    cards = [(where, card_of(m), m) for where, m in sent if card_of(m)]
    assert len(cards) > len(named)
    assert all(any(card is c for _, c, _ in cards) for card in named.values())
    for where, card, activity in cards:
        label = next((name for name, c in named.items() if c is card), where)
        assert card["$schema"] == SCHEMA_ID, label
        assert card["type"] == "AdaptiveCard", label
        assert _version(card["version"]) <= MAX_CARD_VERSION, label
        assert schema_errors(validator, card) == [], label
        assert too_new(schema, card) == [], label
        assert isinstance(card.get("fallbackText"), str) and card["fallbackText"].strip(), label
        size = len(json.dumps(activity, ensure_ascii=False).encode("utf-8"))
        assert size < TEAMS_MESSAGE_LIMIT, f"{label}: {size} bytes"
        for attachment in activity["attachments"]:
            assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive", label


async def test_portfolio_cards_for_consultants_and_others_are_valid_too(tmp_path, store_config, schema, validator):
    """KOMBIT's cross-municipality view: its bar-chart card, and the refusal (with one's own status card)."""
    consultant = Person(aad_id="aad-kombit", name="Karen KOMBIT")
    server = BotServer(data_dir=tmp_path / "data",
                       config_overrides={"consultants": frozenset({"aad-kombit"}), **store_config})
    await server.start()
    try:
        await register(server)
        await ask(server, SAY["da"]["mark"].format(task=title(PHASE1[0], "da")))
        overview = (await ask(server, "oversigt", personal(9), consultant)).card
        refusal = (await ask(server, "oversigt")).card
    finally:
        await server.close()
    for label, card in (("portfolio", overview), ("portfolio refused", refusal)):
        assert card is not None, label
        assert card["$schema"] == SCHEMA_ID and _version(card["version"]) <= MAX_CARD_VERSION, label
        assert schema_errors(validator, card) == [], label
        assert too_new(schema, card) == [], label
    assert AARHUS_NAME in overview["fallbackText"]


# -- 2. each card holds what its text twin holds ------------------------------------------------------------------
@BOTH
@pytest.mark.parametrize("phase", [1, 2])
async def test_next_card_has_every_numbered_task_of_its_text_with_a_done_button(server, lang, phase):
    await register(server, lang)
    utterance = SAY[lang]["next" if phase == 1 else "next2"]
    text = await twin(server, utterance, HOME, mette(lang))
    card = (await ask(server, utterance, HOME, mette(lang))).card
    assert card["fallbackText"] == text
    name = PHASES[phase]["name"][lang]
    total = sum(t["phase"] == phase for t in TASKS)
    header = t(lang, "next.header", number=phase, phase=name, done=0, total=total)
    assert text.split("\n\n")[0] == header
    assert text_blocks(card)[0] == header
    lines = numbered(text)
    assert [n for n, _ in lines] == list(range(1, total + 1))
    assert task_lines(card) == [f"{n}. {line}" for n, line in lines]  # same lines, same order
    for (n, line), (texts, row_buttons) in zip(lines, rows(card), strict=True):
        assert texts == [f"{n}. {line}"]
        (button,) = row_buttons  # the button sits beside its task
        assert button["title"] == t(lang, "card.done")
        assert button["data"] == {"v": 1, "a": "done", "m": AARHUS, "task": task_id_of(line, lang), "p": phase}
    assert len(buttons(card)) == total and "actions" not in card
    # The theme headings and the actors line are in the card too.
    blocks = text_blocks(card)
    for theme in re.findall(r"^\*\*([^*]+)\*\*$", text, flags=re.M):
        assert theme in blocks, theme
    actors = next(p for p in text.split("\n\n") if p.startswith(prefix(lang, "next.actors")))
    titles = [task.get("source") or TASKS_FILE["sources"]["title"] for task in TASKS if task["phase"] == phase]
    assert blocks[-2:] == [actors, cited(lang, *titles)]  # then whose words the task titles are


@BOTH
async def test_status_card_has_each_phases_done_and_total(server, lang):
    await register(server, lang)
    await ask(server, SAY[lang]["mark"].format(task=title("udpeg-projektleder", lang)), HOME, mette(lang))
    phase2_task = next(t["id"] for t in TASKS if t["phase"] == 2 and t["id"] == "planlaeg-uddannelse")
    await ask(server, SAY[lang]["mark"].format(task=title(phase2_task, lang)), HOME, mette(lang))
    text = await twin(server, "status", HOME, mette(lang))
    card = (await ask(server, "status", HOME, mette(lang))).card
    assert card["fallbackText"] == text
    assert text_blocks(card)[0] == t(lang, "status.header", name=AARHUS_NAME, number=1, phase=phase_name(1, lang))
    facts = {f["title"]: f["value"] for n in walk(card["body"]) if n.get("type") == "FactSet" for f in n["facts"]}
    status = status_of(lang, text, AARHUS_NAME)  # every row re-rendered through the catalog
    assert list(status.phases) == [1, 2, 3, 4] and status.current_row == 1
    for number, (name, done, total) in status.phases.items():
        assert name == phase_name(number, lang)
        assert facts[t(lang, "phase.label", number=number, phase=name)].split(" ")[0] == f"{done}/{total}"
    assert facts[t(lang, "phase.label", number=1, phase=phase_name(1, lang))] == "1/6"
    done_all = sum(done for _, done, _ in status.phases.values())
    total_all = sum(total for *_, total in status.phases.values())
    line = t(lang, "status.total", progress=progress(lang, done_all, total_all))
    assert line in text.split("\n\n") and line in text_blocks(card)
    (button,) = buttons(card)
    assert button["title"] == t(lang, "card.next")
    assert button["data"] == {"v": 1, "a": "next", "m": AARHUS, "p": 1}


@BOTH
async def test_glossary_card_has_the_definition_and_a_button_per_related_term(server, lang):
    await register(server, lang)
    term = TERMS["go-live"]
    text = await twin(server, SAY[lang]["define"], HOME, mette(lang))
    card = (await ask(server, SAY[lang]["define"], HOME, mette(lang))).card
    assert card["fallbackText"] == text
    assert text.startswith(f"**{term['term'][lang]}**: {term['definition'][lang]}")
    blocks = text_blocks(card)
    assert blocks[0] == term["term"][lang]
    assert term["definition"][lang] in blocks
    related = [TERMS[r] for r in term["related"]]
    names = [r["term"][lang] for r in related]
    see_also = prefix(lang, "glossary.related")
    assert next(p for p in text.split("\n\n") if p.startswith(see_also))
    assert all(name in text.split(see_also, 1)[1] for name in names)
    assert [b["title"] for b in buttons(card)] == names
    assert [b["data"] for b in buttons(card)] == [{"v": 1, "a": "define", "m": AARHUS, "term": r["id"]} for r in related]


async def _mark_all_but_last(server, lang: str, where: Where = HOME) -> Exchange:
    """Shows the Fase 1 card and presses "Udført" on its first five tasks; returns the card's exchange."""
    shown = await ask(server, SAY[lang]["next"], where, mette(lang))
    for task in PHASE1[:-1]:
        done = await press(server, done_button(shown.card, task)["data"], shown.card_id, where, mette(lang))
        assert done.texts == [marked(lang, task)]
    return shown


@BOTH
async def test_self_check_card_has_a_toggle_per_success_criterion_a_note_and_two_buttons(server, lang):
    await register(server, lang)
    shown = await _mark_all_but_last(server, lang)
    last = await press(server, done_button(shown.card, PHASE1[-1])["data"], shown.card_id, HOME, mette(lang))
    assert last.status < 300 and len(last.messages) == 1
    card = last.card
    assert card is not None, "the last Fase 1 task must send the self-check card"
    complete = t(lang, "mark.phase_complete", number=1, phase=phase_name(1, lang))
    note = "\n\n".join([marked(lang, PHASE1[-1]), phase1_progress(lang, 6), complete])
    assert last.texts == [note]  # the short line shown with the card
    assert card["fallbackText"].startswith(note + "\n\n")
    criteria = [c[lang] for c in PHASES[1]["success_criteria"]]
    # The text twin numbers the criteria unanswered; the card has one toggle per criterion, off.
    assert [line for _, line in numbered(card["fallbackText"])] == [f"⬜ {c}" for c in criteria]
    toggles = [i for i in inputs(card) if i["type"] == "Input.Toggle"]
    assert [(t["id"], t["title"], t["value"], t["valueOn"], t["valueOff"]) for t in toggles] == [
        (f"c{n}", c, "false", "true", "false") for n, c in enumerate(criteria, start=1)]
    (note_input,) = [i for i in inputs(card) if i["type"] == "Input.Text"]
    assert note_input["id"] == "note" and note_input["isMultiline"] is True
    assert note_input["placeholder"] == t(lang, "card.note")
    assert len(inputs(card)) == len(criteria) + 1
    header = t(lang, "gate.header", source=1, source_name=phase_name(1, lang), target=2,
               target_name=phase_name(2, lang))  # "**Faseovergang: …**"; the card's title without the stars
    assert header.startswith("**") and header.endswith("**")
    assert header.strip("*") in text_blocks(card) and header in card["fallbackText"].split("\n\n")
    assert [(b["title"], b["data"]) for b in card["actions"]] == [
        (t(lang, "card.save"), {"v": 1, "a": "gate", "m": AARHUS, "p": 1}),
        (t(lang, "card.proceed"), {"v": 1, "a": "proceed", "m": AARHUS, "p": 1})]
    assert len(buttons(card)) == 2


# -- 3. presses, end to end ----------------------------------------------------------------------------------------
@BOTH
async def test_done_press_marks_the_task_redraws_the_card_and_names_who_pressed(server, lang):
    await register(server, lang)
    assert await overall(server, lang) == (1, 0, 34)
    shown = await ask(server, SAY[lang]["next"], HOME, mette(lang))
    task = PHASE1[2]  # udpeg-gevinstejer, in the middle of the card
    done = await press(server, done_button(shown.card, task)["data"], shown.card_id, HOME, mette(lang))
    assert done.status < 300
    # The short note: which task, and who pressed.
    assert done.texts == [marked(lang, task)]
    assert done.card is None
    # The pressed card, redrawn in place with the new count, every task keeping the number it showed (so
    # "udført 4" still means the card's 4): the pressed one ticked, without its button.
    (update,) = done.updates
    assert update["_path"] == put_path(HOME.conversation_id, shown.card_id)
    assert update["id"] == shown.card_id
    redrawn = card_of(update)
    header = t(lang, "next.header", number=1, phase=phase_name(1, lang), done=1, total=6)
    assert text_blocks(redrawn)[0] == header
    listed = [b["data"]["task"] for b in buttons(shown.card)]
    remaining = [t for t in listed if t != task]
    assert [b["data"]["task"] for b in buttons(redrawn)] == remaining
    assert task_lines(redrawn) == [f"{n}. {title(t, lang)}" for n, t in enumerate(listed, start=1) if t != task]
    ticked = f"{listed.index(task) + 1}. ✅ {title(task, lang)}"
    assert ticked in text_blocks(redrawn) and ticked in redrawn["fallbackText"]
    # ... and the numbers mean what the card says: "done 4" is the card's 4.
    fourth = listed[3]
    typed = await ask(server, f"{SAY[lang]['done_number'].format(number=4)}", HOME, mette(lang))
    assert typed.texts[0].startswith(marked(lang, fourth))
    # The state: one more task done, recorded with who.
    assert await overall(server, lang) == (1, 2, 34)
    assert [(e["action"], e["task_id"], e["by"]["name"]) for e in await server.events()][-2:] == [
        ("done", task, "Mette Hansen"), ("done", fourth, "Mette Hansen")]


@BOTH
async def test_pressing_the_same_button_again_says_who_did_it_and_when_and_changes_nothing(server, lang):
    await register(server, lang)
    shown = await ask(server, SAY[lang]["next"], HOME, mette(lang))
    data = done_button(shown.card, PHASE1[0])["data"]
    first = await press(server, data, shown.card_id, HOME, mette(lang))
    before = await snapshot(server)
    again = await press(server, data, shown.card_id, HOME, mette(lang))
    assert again.status < 300
    assert again.texts == [t(lang, "mark.already", task=title(PHASE1[0], lang), who="Mette Hansen", when=WHEN[lang])]
    (update,) = again.updates  # the stale card is redrawn from the current state
    assert update["_path"] == put_path(HOME.conversation_id, shown.card_id)
    assert card_of(update) == card_of(first.updates[0])
    assert await snapshot(server) == before
    assert await overall(server, lang) == (1, 1, 34)


@BOTH
async def test_press_on_a_task_another_person_just_did_names_that_person(server, lang):
    """Two people of the same municipality, each in a personal chat (the second inherits the tenant's only one)."""
    await register(server, lang)
    johns = personal(2)
    his = await ask(server, SAY[lang]["next"], johns, john(lang))
    hers = await ask(server, SAY[lang]["next"], HOME, mette(lang))
    task = PHASE1[1]
    await press(server, done_button(hers.card, task)["data"], hers.card_id, HOME, mette(lang))
    before = await records(server)
    late = await press(server, done_button(his.card, task)["data"], his.card_id, johns, john(lang))
    assert late.texts == [t(lang, "mark.already", task=title(task, lang), who="Mette Hansen", when=WHEN[lang])]
    (update,) = late.updates
    assert update["_path"] == put_path(johns.conversation_id, his.card_id)
    assert task not in [b["data"]["task"] for b in buttons(card_of(update))]
    assert await records(server) == before
    assert [e["by"]["name"] for e in await server.events() if e["action"] == "done"] == ["Mette Hansen"]


async def test_press_on_the_last_task_of_a_phase_also_redraws_the_pressed_card(server):
    await register(server)
    shown = await _mark_all_but_last(server, "da")
    last = await press(server, done_button(shown.card, PHASE1[-1])["data"], shown.card_id)
    assert last.card is not None  # the self-check card is sent ...
    assert len(last.updates) == 1  # ... and the pressed card is redrawn
    assert last.updates[0]["_path"] == put_path(HOME.conversation_id, shown.card_id)
    assert buttons(card_of(last.updates[0])) == []  # every task ticked, none left to press
    listed = [b["data"]["task"] for b in buttons(shown.card)]
    number = listed.index(PHASE1[-1]) + 1
    assert f"{number}. ✅ {title(PHASE1[-1], 'da')}" in text_blocks(card_of(last.updates[0]))


async def _self_check(server, lang: str) -> Exchange:
    await register(server, lang)
    shown = await _mark_all_but_last(server, lang)
    last = await press(server, done_button(shown.card, PHASE1[-1])["data"], shown.card_id, HOME, mette(lang))
    assert last.card and last.card["actions"][0]["data"]["a"] == "gate"
    return last


def _answers(**toggles: str) -> dict:
    return {f"c{n}": toggles.get(f"c{n}", "true") for n in range(1, 5)}


@BOTH
async def test_self_check_save_with_every_criterion_on_moves_to_phase_2(server, lang):
    checklist = await _self_check(server, lang)
    save, _ = checklist.card["actions"]
    done = await press(server, {**save["data"], **_answers(), "note": ""}, checklist.card_id, HOME, mette(lang))
    assert done.status < 300
    assert done.texts[0].startswith(t(lang, "gate.done", target=2, target_name=phase_name(2, lang)))
    assert await overall(server, lang) == (2, 6, 34)
    (event,) = [e for e in await server.events() if e["action"] == "phase"]
    assert event["by"]["name"] == "Mette Hansen" and event["code"] == AARHUS
    details = event["details"]
    assert (details["from"], details["to"], details["exceptions"]) == (1, 2, 0)
    assert [a["criterion"] for a in details["answers"]] == [c["da"] for c in PHASES[1]["success_criteria"]]
    assert all(a["ok"] for a in details["answers"])


@BOTH
async def test_self_check_save_with_a_gap_keeps_the_answers_and_redraws_then_proceed_moves_on(server, lang):
    checklist = await _self_check(server, lang)
    save, proceed = checklist.card["actions"]
    note = "Økonomiudvalget beslutter i marts" if lang == "da" else "Økonomiudvalget decides in March"
    saved = await press(server, {**save["data"], **_answers(c2="false"), "note": note}, checklist.card_id, HOME,
                        mette(lang))
    assert saved.status < 300
    assert saved.texts == [t(lang, "gate.saved")] and saved.card is None
    (update,) = saved.updates
    assert update["_path"] == put_path(HOME.conversation_id, checklist.card_id)
    redrawn = card_of(update)
    toggles = {t["id"]: t["value"] for t in inputs(redrawn) if t["type"] == "Input.Toggle"}
    assert toggles == {"c1": "true", "c2": "false", "c3": "true", "c4": "true"}
    body = redrawn["body"]
    c2 = next(i for i, n in enumerate(body) if n.get("id") == "c2")
    assert body[c2 + 1]["type"] == "TextBlock" and body[c2 + 1]["text"] == note  # the note, under its criterion
    assert note in redrawn["fallbackText"]
    assert [line.split(" ", 1)[0] for _, line in numbered(redrawn["fallbackText"])] == ["✅", "❌", "✅", "✅"]
    assert await overall(server, lang) == (1, 6, 34)  # saved, not moved
    assert [e for e in await server.events() if e["action"] == "phase"] == []
    # "Fortsæt alligevel" moves on with the gap as an exception.
    moved = await press(server, proceed["data"], checklist.card_id, HOME, mette(lang))
    assert moved.texts[0].startswith(tn(lang, "gate.done.exceptions", 1, target=2, target_name=phase_name(2, lang)))
    assert await overall(server, lang) == (2, 6, 34)
    (event,) = [e for e in await server.events() if e["action"] == "phase"]
    assert event["details"]["exceptions"] == 1
    gaps = [a for a in event["details"]["answers"] if not a["ok"]]
    assert gaps == [{"criterion": PHASES[1]["success_criteria"][1]["da"], "ok": False, "note": note}]


@BOTH
async def test_stale_proceed_press_after_the_transition_changes_nothing(server, lang):
    checklist = await _self_check(server, lang)
    save, proceed = checklist.card["actions"]
    await press(server, {**save["data"], **_answers()}, checklist.card_id, HOME, mette(lang))
    before = await snapshot(server)
    late = await press(server, proceed["data"], checklist.card_id, HOME, mette(lang))
    assert late.texts == [t(lang, "press.stale")] and late.updates == []
    assert await snapshot(server) == before


async def test_stale_save_press_after_the_transition_says_the_card_is_out_of_date(server):
    checklist = await _self_check(server, "da")
    save, _ = checklist.card["actions"]
    await press(server, {**save["data"], **_answers()}, checklist.card_id)
    before = await snapshot(server)
    late = await press(server, {**save["data"], **_answers(c3="false")}, checklist.card_id)
    assert await snapshot(server) == before
    assert late.texts == [t("da", "press.stale")]


@BOTH
async def test_related_term_button_gives_that_terms_definition(server, lang):
    await register(server, lang)
    defined = await ask(server, SAY[lang]["define"], HOME, mette(lang))
    before = await snapshot(server)
    for button in buttons(defined.card):
        term = TERMS[button["data"]["term"]]
        shown = await press(server, button["data"], defined.card_id, HOME, mette(lang))
        assert shown.status < 300 and shown.updates == []  # a new card; the pressed one stays as it is
        assert shown.card["fallbackText"].startswith(f"**{term['term'][lang]}**: {term['definition'][lang]}")
        assert text_blocks(shown.card)[0] == term["term"][lang]
        assert [b["data"]["term"] for b in buttons(shown.card)] == term["related"]
    assert await snapshot(server) == before


async def test_related_term_button_works_before_registration(server):
    defined = await ask(server, SAY["en"]["define"], HOME, mette("en"))
    button = buttons(defined.card)[0]
    assert button["data"]["m"] == ""  # drawn without a municipality
    shown = await press(server, button["data"], defined.card_id, HOME, mette("en"))
    term = TERMS[button["data"]["term"]]
    assert shown.card["fallbackText"].startswith(f"**{term['term']['en']}**: {term['definition']['en']}")


@BOTH
async def test_status_next_button_sends_the_open_tasks_card(server, lang):
    await register(server, lang)
    status = await ask(server, "status", HOME, mette(lang))
    shown = await press(server, buttons(status.card)[0]["data"], status.card_id, HOME, mette(lang))
    assert shown.updates == []
    expected = await twin(server, SAY[lang]["next"], HOME, mette(lang))
    assert shown.card["fallbackText"] == expected


@pytest.mark.parametrize("room", [channel(), group_chat()], ids=["channel", "group-chat"])
async def test_press_in_a_channel_or_group_chat_is_handled(server, room):
    await register(server, "da", room)
    shown = await ask(server, SAY["da"]["next"], room)
    done = await press(server, done_button(shown.card, PHASE1[0])["data"], shown.card_id, room)
    assert done.texts == [marked("da", PHASE1[0])]
    assert len(done.updates) == 1


# -- 4. stale and malformed presses --------------------------------------------------------------------------------
GOOD = {"v": 1, "a": "done", "m": AARHUS, "task": PHASE1[0], "p": 1}


def _without(key: str) -> dict:
    return {k: v for k, v in GOOD.items() if k != key}


def _nested(depth: int, leaf: object) -> object:
    for _ in range(depth):
        leaf = [leaf]
    return leaf


def _nested_object(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"x": value}
    return value


MALFORMED = [  # (id, value, msgid of the expected reply)
    ("version-0", {**GOOD, "v": 0}, "press.old"),
    ("version-2", {**GOOD, "v": 2}, "press.old"),
    ("version-string", {**GOOD, "v": "1"}, "press.old"),
    ("unknown-action", {**GOOD, "a": "explode"}, "press.invalid"),
    ("action-null", {**GOOD, "a": None}, "press.invalid"),
    ("missing-task", _without("task"), "press.invalid"),
    ("task-list", {**GOOD, "task": [PHASE1[0]]}, "press.invalid"),
    ("task-int", {**GOOD, "task": 1}, "press.invalid"),
    ("task-dict", {**GOOD, "task": {"id": PHASE1[0]}}, "press.invalid"),
    ("task-null", {**GOOD, "task": None}, "press.invalid"),
    ("unknown-task", {**GOOD, "task": "udpeg-blockchain-ejer"}, "press.invalid"),
    ("phase-0", {**GOOD, "p": 0}, "press.invalid"),
    ("phase-5", {**GOOD, "p": 5}, "press.invalid"),
    ("phase-negative", {**GOOD, "p": -1}, "press.invalid"),
    ("phase-string", {**GOOD, "p": "1"}, "press.invalid"),
    ("phase-float", {**GOOD, "p": 1.5}, "press.invalid"),
    ("phase-null", {**GOOD, "p": None}, "press.invalid"),
    ("missing-phase", _without("p"), "press.invalid"),
    ("define-unknown-term", {"v": 1, "a": "define", "m": AARHUS, "term": "blockchain"}, "press.invalid"),
    ("define-term-list", {"v": 1, "a": "define", "m": AARHUS, "term": ["go-live"]}, "press.invalid"),
    ("value-list", [GOOD], "unknown.empty"),
    ("value-string", "done", "unknown.empty"),
    ("value-number", 1, "unknown.empty"),
    ("value-without-version", _without("v"), "unknown.empty"),
    ("deep-task-500", {**GOOD, "task": _nested(500, PHASE1[0])}, "press.invalid"),
    ("deep-action-500", {**GOOD, "a": _nested(500, "done")}, "press.invalid"),
    ("deep-value-500", _nested_object(500), "unknown.empty"),
]


@pytest.fixture
async def aarhus(server):
    """Aarhus registered in a personal chat, the open tasks card shown."""
    await register(server)
    shown = await ask(server, SAY["da"]["next"])
    server.card_id = shown.card_id
    return server


async def _refused_politely(server, value: object, reply_to: str | None, expected: str, where: Where = HOME,
                            who: Person | None = None, mention: bool = False) -> None:
    before = await snapshot(server)
    outcome = await press(server, value, reply_to, where, who or mette(), mention)
    assert outcome.status < 500
    assert outcome.texts == [expected], outcome.texts
    assert outcome.card is None and outcome.updates == []
    assert await snapshot(server) == before  # state and audit trail untouched


@pytest.mark.parametrize("value, key", [(v, k) for _, v, k in MALFORMED], ids=[i for i, _, _ in MALFORMED])
async def test_malformed_press_gets_a_polite_reply_and_changes_nothing(aarhus, value, key):
    await _refused_politely(aarhus, value, aarhus.card_id, t("da", key))


@BOTH
@pytest.mark.parametrize("version", [0, 2])
async def test_card_from_another_version_asks_again(server, lang, version):
    await register(server, lang)
    shown = await ask(server, SAY[lang]["next"], HOME, mette(lang))
    value = {**done_button(shown.card, PHASE1[0])["data"], "v": version}
    await _refused_politely(server, value, shown.card_id, t(lang, "press.old"), who=mette(lang))
    assert await overall(server, lang) == (1, 0, 34)


@BOTH
async def test_card_of_another_municipality_names_both(server, lang):
    """A card drawn for Odense, pressed after the conversation was switched to Aarhus."""
    who = mette(lang)
    await ask(server, SAY[lang]["odense"], HOME, who)
    odense_card = await ask(server, SAY[lang]["next"], HOME, who)
    assert done_button(odense_card.card, PHASE1[0])["data"]["m"] == ODENSE
    switch = await ask(server, SAY[lang]["register"], HOME, who)
    question = t(lang, "register.switch", previous="Odense Kommune", name=AARHUS_NAME)
    assert question in json.dumps(switch.card, ensure_ascii=False)  # asked first: the data would move
    await ask(server, SAY[lang]["yes"], HOME, who)
    expected = t(lang, "press.other_municipality", other="Odense Kommune", current=AARHUS_NAME)
    await _refused_politely(server, done_button(odense_card.card, PHASE1[0])["data"], odense_card.card_id, expected,
                            who=who)
    assert await overall(server, lang) == (1, 0, 34)


@pytest.mark.parametrize("value", [_without("m"), {**GOOD, "m": "9999"}, {**GOOD, "m": 751}, {**GOOD, "m": ["0751"]}],
                         ids=["missing", "unknown-code", "number", "list"])
async def test_press_with_a_missing_or_foreign_municipality_code_changes_nothing(aarhus, value):
    """Not a card the bot drew for any municipality: the button cannot be used, and nothing changes."""
    before = await snapshot(aarhus)
    outcome = await press(aarhus, value, aarhus.card_id)
    assert outcome.status < 300 and outcome.updates == []
    (text,) = outcome.texts
    assert text == t("da", "press.invalid")
    assert await snapshot(aarhus) == before


async def test_press_without_reply_to_id_is_still_answered(aarhus):
    done = await press(aarhus, GOOD, None)
    assert done.texts == [marked("da", PHASE1[0])]
    assert done.updates == []  # nothing to redraw without knowing the card


async def test_press_in_a_conversation_that_is_not_registered_says_how_to_register(server):
    for lang in ("da", "en"):
        await _refused_politely(server, GOOD, "reply-1", t(lang, "register.needed"), who=mette(lang))
    assert await server.events() == []


@pytest.mark.parametrize("mention", [
    pytest.param(True, id="with-mention"),
    pytest.param(False, id="as-teams-sends-it"),
])
async def test_press_from_another_tenant_with_the_same_team_id_is_refused(server, mention):
    await register(server, "da", channel())
    shown = await ask(server, SAY["da"]["next"], channel())
    forged = channel(tenant=OTHER_TENANT)
    intruder = Person(aad_id="aad-intruder", name="Ivan Intruder")
    await _refused_politely(server, done_button(shown.card, PHASE1[0])["data"], shown.card_id,
                            t("da", "tenant.refused", name=AARHUS_NAME), forged, intruder, mention=mention)
    assert await overall(server, "da", channel()) == (1, 0, 34)


async def test_body_nested_beyond_the_parsers_limit_is_a_client_error(aarhus):
    """A value nested 100 000 deep is no activity Teams sends: refused as a bad request, not a server error."""
    activity = aarhus.activity(HOME, mette(), value="@@DEEP@@", replyToId=aarhus.card_id)
    depth = 100_000
    raw = json.dumps(activity).replace('"@@DEEP@@"', "[" * depth + "]" * depth).encode()
    before = await snapshot(aarhus)
    outcome = await send(aarhus, raw=raw)
    assert 400 <= outcome.status < 500
    assert outcome.messages == [] and outcome.updates == []
    assert await snapshot(aarhus) == before


@pytest.mark.parametrize("value, key", [({**GOOD, "v": True}, "press.old"), ({**GOOD, "p": True}, "press.invalid")],
                         ids=["version-true", "phase-true"])
async def test_boolean_version_or_phase_is_refused(aarhus, value, key):
    await _refused_politely(aarhus, value, aarhus.card_id, t("da", key))
