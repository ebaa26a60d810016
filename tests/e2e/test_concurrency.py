"""Concurrent turns against one in-process server: many people at the same instant, one consistent store.

The server is the real aiohttp app with services built from a copy of content/ whose data/project.yaml adds
26 tasks (60 in all), so 50 people can each mark a different task of the same municipality. Replies are
matched to requests by the replyToId botbuilder puts on them, not by arrival order.
"""
from __future__ import annotations

import asyncio
import logging
import random
import re
import shutil
from dataclasses import dataclass, field

import pytest
import yaml
from aiohttp import web

from bot.app import make_app
from bot.config import Config
from content import load_content
from content.catalogs import Catalogs
from content.loader import CONTENT_ROOT
from dialogs.context import Services
from dialogs.understanding import Understander
from tests.harness import (
    OTHER_TENANT,
    TENANT,
    BotServer,
    Person,
    Where,
    channel,
    group_chat,
    personal,
)
from tests.wording import overall_of, prefix, rx, t

pytestmark = pytest.mark.both_stores  # every test on the data dir and on PostgreSQL (tests/conftest.py)

WORDS = ["alfa", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett", "kilo", "lima",
         "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey",
         "xray", "yankee", "zulu"]


@pytest.fixture(scope="module")
def big_content(tmp_path_factory):
    """content/ copied, with 26 extra tasks (unique ids, titles and aliases) added through project.yaml."""
    root = tmp_path_factory.mktemp("content") / "content"
    shutil.copytree(CONTENT_ROOT, root, ignore=shutil.ignore_patterns("__pycache__"))
    project_path = root / "data" / "project.yaml"
    project = yaml.safe_load(project_path.read_text(encoding="utf-8"))
    project["project"]["add_tasks"] = [{
        "id": f"kontrolpunkt-{word}",
        "phase": 1 + i % 4,
        "theme": "projektstyring",
        "title": {"da": f"Kontrolpunkt {word}", "en": f"Checkpoint {word}"},
        "aliases": {"da": [f"kontrol {word}"], "en": [f"check {word}"]},
    } for i, word in enumerate(WORDS)]
    project_path.write_text(yaml.safe_dump(project, allow_unicode=True), encoding="utf-8")
    content = load_content(root)
    assert len(content.tasks) >= 50
    return content, Understander.of(content)


@dataclass
class ContentServer(BotServer):
    """The harness server, built with services from the given content (the harness builds its own), on the
    store its config names (config_overrides: the data dir, or a PostgreSQL database)."""

    content: object = None
    understander: Understander | None = None
    services: Services | None = None

    def build_app(self) -> web.Application:
        config = Config(data_dir=self.data_dir, port=0, **self.config_overrides)
        self.services = Services(content=self.content, catalogs=Catalogs(), store=config.open_store(),
                                 understander=self.understander)
        return make_app(config, clock=self.clock, services=self.services)


@pytest.fixture
async def big(tmp_path, big_content, store_config, caplog):
    content, understander = big_content
    server = ContentServer(data_dir=tmp_path / "data", config_overrides=dict(store_config), content=content,
                           understander=understander)
    await server.start()
    caplog.set_level(logging.ERROR)
    yield server
    await server.close()
    errors = [f"{r.name}: {r.getMessage()} {r.exc_info[1]!r}" if r.exc_info else f"{r.name}: {r.getMessage()}"
              for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors


# -- helpers ------------------------------------------------------------------------------------------------


async def at_once(server: BotServer, bodies: list[dict]) -> dict[str, str]:
    """POST every body at the same instant; activity id -> the reply text (every one must get exactly one)."""
    before = len(server.connector.sent)
    statuses = await asyncio.gather(*(server.post(b) for b in bodies))
    assert all(s == 201 for s in statuses), statuses
    replies: dict[str, list[str]] = {}
    for activity in server.connector.sent[before:]:
        replies.setdefault(activity.get("replyToId"), []).append(activity.get("text", ""))
    missing = [b["id"] for b in bodies if len(replies.get(b["id"], [])) != 1]
    assert not missing, f"not exactly one reply for {missing}: {replies}"
    return {b["id"]: replies[b["id"]][0] for b in bodies}


async def tasks_of(server: BotServer, code: str) -> dict[str, dict]:
    """The municipality's tasks as stored (task id -> {done, by, at, conversation}): in its file, once what was
    only cached is written, or in its row of the database."""
    return ((await server.municipality_docs()).get(code) or {}).get("tasks") or {}




async def done_count(server: BotServer, where: Where) -> int:
    return overall_of("da", await server.say("status", where))[0]


def links(text: str, code: str | None = None) -> bool:
    """A reply that links the conversation (or its team) to a municipality: register.done(.team)."""
    values = {"code": code} if code else {}
    return any(re.search(rx("da", key, **values), text) for key in ("register.done", "register.done.team"))


# -- 50 people, 50 tasks, one instant ------------------------------------------------------------------------


async def test_fifty_people_marking_fifty_tasks_at_once_are_all_recorded(big):
    content = big.services.content
    team = channel()
    assert "Aarhus Kommune" in await big.say("tilmeld Aarhus", team)
    people = [Person(aad_id=f"aad-user-{i:02d}", name=f"Bruger {i:02d}") for i in range(50)]
    chosen = random.Random(50).sample(content.tasks, 50)
    bodies = [big.message(f"marker {task.title.da} som udført", team, person)
              for task, person in zip(chosen, people, strict=True)]

    replies = await at_once(big, bodies)

    for body, task, person in zip(bodies, chosen, people, strict=True):
        expected = t("da", "mark.done", task=task.title.da, who=person.name)
        assert replies[body["id"]].startswith(expected), (expected, replies[body["id"]])
    await big.checkpoint()
    tasks = await tasks_of(big, "0751")
    assert {t: s["by"]["id"] for t, s in tasks.items() if s["done"]} == {
        t.id: p.aad_id for t, p in zip(chosen, people, strict=True)}
    done = [e for e in await big.events() if e["action"] == "done"]
    assert sorted((e["task_id"], e["by"]["id"], e["code"]) for e in done) == sorted(
        (t.id, p.aad_id, "0751") for t, p in zip(chosen, people, strict=True))
    assert await done_count(big, team) == 50


# -- two people, one task, one instant -------------------------------------------------------------------


async def test_two_people_marking_the_same_task_at_once_one_wins_and_the_other_is_told_who(big):
    content = big.services.content
    team = channel()
    assert "Aarhus Kommune" in await big.say("tilmeld Aarhus", team)
    anna, bo = Person("aad-anna", "Anna Andersen"), Person("aad-bo", "Bo Bech")
    contested = content.tasks[:12]
    winners = {}
    for n, task in enumerate(contested):
        pair = (anna, bo) if n % 2 == 0 else (bo, anna)  # either may be first on the wire
        bodies = [big.message(f"marker {task.title.da} som udført", team, p) for p in pair]
        replies = await at_once(big, bodies)
        texts = [replies[b["id"]] for b in bodies]
        won = [p for p, text in zip(pair, texts, strict=True)
               if text.startswith(t("da", "mark.done", task=task.title.da, who=p.name))]
        assert len(won) == 1, texts
        winner = won[0]
        loser_text = next(text for p, text in zip(pair, texts, strict=True) if p is not winner)
        assert re.match(rx("da", "mark.already", task=task.title.da, who=winner.name), loser_text), loser_text
        winners[task.id] = winner.aad_id

    await big.checkpoint()

    tasks = await tasks_of(big, "0751")
    assert {t: s["by"]["id"] for t, s in tasks.items()} == winners
    done = [e for e in await big.events() if e["action"] == "done"]
    assert sorted((e["task_id"], e["by"]["id"]) for e in done) == sorted(winners.items()), "one audit event per task"
    print(f"\nrace winners: {sum(w == 'aad-anna' for w in winners.values())} Anna, "
          f"{sum(w == 'aad-bo' for w in winners.values())} Bo")


async def test_two_tenants_registering_one_municipality_at_once_only_one_binds_it(big):
    codes = ["0751", "0461", "0851", "0101", "0561", "0147"]
    winners, losers = {}, {}
    for n, code in enumerate(codes):
        ours, theirs = personal(100 + n, TENANT), personal(200 + n, OTHER_TENANT)
        pair = (ours, theirs) if n % 2 == 0 else (theirs, ours)
        bodies = [big.message(f"tilmeld {code}", where) for where in pair]
        replies = await at_once(big, bodies)
        texts = [replies[b["id"]] for b in bodies]
        bound = [w for w, text in zip(pair, texts, strict=True) if links(text, code)]
        refused = [w for w, text in zip(pair, texts, strict=True) if re.search(rx("da", "tenant.refused"), text)]
        assert len(bound) == 1 and len(refused) == 1, texts
        winners[code], losers[code] = bound[0], refused[0]

    await big.checkpoint()

    tenants = {code: d.get("tenant_id") for code, d in (await big.municipality_docs()).items()}
    assert tenants == {code: w.tenant_id for code, w in winners.items()}
    for code in codes:  # the winner's conversation is registered, the loser's is not
        won = await big.store.registration(f"conversation:{winners[code].conversation_id}")
        assert (won.code, won.tenant_id) == (code, winners[code].tenant_id)
        assert await big.store.registration(f"conversation:{losers[code].conversation_id}") is None
    assert sorted(await big.store.codes_for_tenant(TENANT) + await big.store.codes_for_tenant(OTHER_TENANT)) == \
        sorted(codes)
    registered = [e["code"] for e in await big.events() if e["action"] == "register"]
    assert sorted(registered) == sorted(codes), "one audit event per municipality, for the winner only"


# -- mixes of registrations, undos and marks ------------------------------------------------------------


@dataclass
class Place:
    where: Where
    conversation: str  # the id the store records (a thread belongs to its channel)
    scope: str
    sent_codes: list[str] = field(default_factory=list)


async def test_concurrent_mixes_of_register_undo_and_mark_leave_state_and_audit_consistent(big):
    content = big.services.content
    seed = random.SystemRandom().randrange(2**32)
    print(f"\nconcurrency mix seed {seed}")
    rng = random.Random(seed)
    codes = {"0751": "Aarhus", "0461": "Odense", "0101": "København"}
    places = [
        Place(channel(), "19:general@thread.tacv2", "team:19:team-aarhus@thread.tacv2"),
        Place(channel(team="19:team-b@thread.tacv2", channel_id="19:b-general@thread.tacv2"), "19:b-general@thread.tacv2",
              "team:19:team-b@thread.tacv2"),
        Place(group_chat(1), "19:group-1@thread.v2", "conversation:19:group-1@thread.v2"),
        Place(personal(1), "a:personal-1", "conversation:a:personal-1"),
    ]
    for place in places:
        name = rng.choice(list(codes.values()))
        assert links(await big.say(f"tilmeld {name}", place.where))
    pool = rng.sample(content.tasks, 6)  # few tasks, so marks and undos collide
    people = [Person(f"aad-mix-{i}", f"Blander {i}") for i in range(8)]

    for round_number in range(8):
        bodies = []
        for _ in range(20):
            place = rng.choice(places)
            roll = rng.random()
            if roll < 0.15:
                text = f"tilmeld {rng.choice(list(codes.values()))}"
            elif roll < 0.6:
                text = f"marker {rng.choice(pool).title.da} som udført"
            else:
                text = f"fortryd {rng.choice(pool).title.da}"
            bodies.append(big.message(text, place.where, rng.choice(people)))
        audit_before = len(await big.events())

        replies = await at_once(big, bodies)

        await big.checkpoint()

        audit = await big.events()
        new = audit[audit_before:]
        texts = list(replies.values())
        where = f"seed {seed}, round {round_number}"
        # Every success reply has exactly one audit event behind it, and every new event a success reply.
        marked, reopened = prefix("da", "mark.done"), prefix("da", "reopen.done")  # "✅ «", "↩️ «"
        assert sum(text.startswith(marked) for text in texts) == sum(e["action"] == "done" for e in new), where
        assert sum(text.startswith(reopened) for text in texts) == sum(e["action"] == "reopen" for e in new), where
        assert sum(links(text) for text in texts) == sum(e["action"] == "register" for e in new), where
        # The state of every task is the last action on it in the audit trail.
        last: dict[tuple[str, str], str] = {}
        for event in audit:
            if event["action"] in ("done", "reopen"):
                last[(event["code"], event["task_id"])] = event["action"]
        for code in codes:
            recorded = {t: s["done"] for t, s in (await tasks_of(big, code)).items()}
            expected = {t: a == "done" for (c, t), a in last.items() if c == code}
            assert recorded == expected, f"{where}: {code} state {recorded} vs audit {expected}"
        # Each place's registration is the last one its conversation asked for, and "status" agrees.
        for place in places:
            registered = [e["code"] for e in audit if e["action"] == "register" and e["conversation"] == place.conversation]
            code = (await big.store.registration(place.scope)).code
            assert code == registered[-1], where
            assert await done_count(big, place.where) == sum(1 for (c, _), a in last.items() if c == code and a == "done"), where
