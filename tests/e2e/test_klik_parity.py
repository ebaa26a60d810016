"""KLIK parity end to end, over HTTP, in Danish and English: ansvarlig/udfører (with Teams @mentions) and
"mine opgaver", a municipality's own local tasks through their whole life, and task details with the deadline.

Expected wording is the catalog's (content/locale/*/LC_MESSAGES/messages.po, read here with babel) and the
model's own text (content/data/tasks.yaml, read here with yaml), not the product's loader.
"""
from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from babel.messages.pofile import read_po

from tests.harness import audit_events, OTHER_TENANT, BotServer, Person, Where, card_of, channel, group_chat, personal, reply_text

ROOT = Path(__file__).parents[2] / "content"
TASKS = {t["id"]: t for t in yaml.safe_load((ROOT / "data" / "tasks.yaml").read_text(encoding="utf-8"))["tasks"]}
THEMES = yaml.safe_load((ROOT / "data" / "themes.yaml").read_text(encoding="utf-8"))["themes"]
KLIK_COUNT = len(TASKS)
PHASE_COUNT = {n: sum(t["phase"] == n for t in TASKS.values()) for n in range(1, 5)}
MONTHS = {"da": ["januar", "februar", "marts", "april", "maj", "juni", "juli", "august", "september", "oktober",
                 "november", "december"],
          "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                 "November", "December"]}


def _catalog(lang: str) -> dict[str, str]:
    with (ROOT / "locale" / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return {m.id: m.string for m in read_po(fh) if m.id}


CATALOG = {"da": _catalog("da"), "en": _catalog("en")}


def msg(lang: str, msgid: str, **values) -> str:
    template = CATALOG[lang][msgid]
    return template.format(**values) if values else template


def day(lang: str, value: date) -> str:
    month = MONTHS[lang][value.month - 1]
    return f"{value.day}. {month} {value.year}" if lang == "da" else f"{value.day} {month} {value.year}"


AARHUS = channel()  # TENANT's team "aarhus"
ODENSE = channel(team="19:team-odense@thread.tacv2", channel_id="19:odense-general@thread.tacv2", tenant=OTHER_TENANT)
METTE = Person()  # Mette Hansen, aad-mette
LARS = Person("aad-lars", "Lars Nielsen")
LARS_EN = Person("aad-lars", "Lars Nielsen", "en-GB")
EMMA = Person("aad-emma", "Emma Smith", "en-GB")
LARS_MENTION = {"type": "mention", "text": "<at>Lars Nielsen</at>", "mentioned": {"id": "29:aad-lars", "name": "Lars Nielsen"}}




async def mention_lars(server: BotServer, text: str, where: Where, person: Person = METTE) -> str:
    """A Teams message with Lars @mentioned in it (and the bot too, outside personal chats)."""
    activity = server.message(text, where, person)
    activity["entities"] = [*activity.get("entities", []), LARS_MENTION]
    return reply_text(await server.exchange(activity))




def status_rows(text: str, lang: str = "da") -> tuple[dict[int, tuple[int, int]], tuple[int, int]]:
    word = {"da": (r"Fase (\d) [^:]+: (\d+) af (\d+) opgaver udført", r"I alt: (\d+) af (\d+) opgaver udført"),
            "en": (r"Phase (\d) [^:]+: (\d+) of (\d+) tasks done", r"Overall: (\d+) of (\d+) tasks done")}[lang]
    rows = {int(n): (int(d), int(t)) for n, d, t in re.findall(word[0], text)}
    total = re.search(word[1], text)
    return rows, (int(total[1]), int(total[2]))


@pytest.fixture
async def aarhus(server):
    assert "Aarhus Kommune" in await server.say("tilmeld Aarhus", AARHUS)
    return server


# -- ansvarlig / udfører ----------------------------------------------------------------------------
async def test_performer_by_mention_and_responsible_by_name_then_mine_opgaver(aarhus):
    server = aarhus
    reply = await mention_lars(server, "tildel Udpeg superbrugere til <at>Lars Nielsen</at>", AARHUS)
    assert reply == msg("da", "assign.done.performer", person="Lars Nielsen", task="Udpeg superbrugere")
    reply = await server.say("sæt Mette som ansvarlig for Planlæg uddannelse", AARHUS)
    assert reply == msg("da", "assign.done.responsible", person="Mette", task="Planlæg uddannelse")

    mine = msg("da", "assign.mine.header")
    lars_list = f"{mine}\n\n- ⬜ Udpeg superbrugere (udfører, fase 2)"
    assert await server.say("mine opgaver", AARHUS, LARS) == lars_list
    assert await server.say("mine opgaver", personal(2), LARS) == lars_list  # his personal chat: same tenant
    mette = Person("aad-mette-s", "Mette")  # found by name: "Mette" was typed, not mentioned
    assert await server.say("mine opgaver", AARHUS, mette) == f"{mine}\n\n- ⬜ Planlæg uddannelse (ansvarlig, fase 2)"
    namesake = Person("aad-lars-2", "Lars Nielsen")  # same name, another person: a mention is by id
    assert await server.say("mine opgaver", AARHUS, namesake) == msg("da", "assign.mine.none")
    assert await server.say("mine opgaver", AARHUS, Person("aad-jens", "Jens Jensen")) == msg("da", "assign.mine.none")

    # Both roles on one task; details show them.
    await mention_lars(server, "tildel Planlæg uddannelse til <at>Lars Nielsen</at>", AARHUS)
    details = await server.say("vis Planlæg uddannelse", AARHUS)
    assert "\n\nansvarlig: Mette · udfører: Lars Nielsen\n\n" in details
    assert "\n\nudfører: Lars Nielsen\n\n" in await server.say("vis Udpeg superbrugere", AARHUS)
    await server.say("marker Udpeg superbrugere som udført", AARHUS)
    lars_list = f"{mine}\n\n- ✅ Udpeg superbrugere (udfører, fase 2)\n- ⬜ Planlæg uddannelse (udfører, fase 2)"
    assert await server.say("mine opgaver", AARHUS, LARS) == lars_list

    # Audited, with who was made what; the task's history says so.
    assigned = [(e["task_id"], e["details"]["role"], e["details"]["person"], e["by"]["id"])
                for e in audit_events(server.data_dir) if e["action"] == "assign"]
    assert assigned == [
        ("udpeg-superbrugere", "performer", {"id": "29:aad-lars", "name": "Lars Nielsen"}, "aad-mette"),
        ("planlaeg-uddannelse", "responsible", {"id": "", "name": "Mette"}, "aad-mette"),
        ("planlaeg-uddannelse", "performer", {"id": "29:aad-lars", "name": "Lars Nielsen"}, "aad-mette")]
    history = await server.say("historik for Planlæg uddannelse", AARHUS)
    assert history.count("Mette Hansen tildelte «Planlæg uddannelse»") == 2

    # Everything survives a restart.
    await server.restart()
    assert await server.say("mine opgaver", AARHUS, LARS) == lars_list
    assert "ansvarlig: Mette · udfører: Lars Nielsen" in await server.say("vis Planlæg uddannelse", AARHUS)
    # Another municipality does not see Aarhus's assignments.
    await server.say("tilmeld Odense", ODENSE)
    assert await server.say("mine opgaver", ODENSE, Person("aad-lars", "Lars Nielsen")) == msg("da", "assign.mine.none")
    assert "udfører" not in await server.say("vis Planlæg uddannelse", ODENSE)


async def test_assign_in_english_in_a_group_chat(server):
    chat = group_chat(4, tenant=OTHER_TENANT)
    await server.say("register Odense", chat, EMMA)
    reply = await mention_lars(server, "assign Appoint super users to <at>Lars Nielsen</at>", chat, EMMA)
    assert reply == msg("en", "assign.done.performer", person="Lars Nielsen", task="Appoint super users")
    reply = await server.say("make Mette responsible for Plan training", chat, EMMA)
    assert reply == msg("en", "assign.done.responsible", person="Mette", task="Plan training")
    mine = msg("en", "assign.mine.header")
    assert await server.say("my tasks", chat, LARS_EN) == f"{mine}\n\n- ⬜ Appoint super users (performer, phase 2)"
    assert await server.say("my tasks", chat, Person("aad-mette-s", "Mette", "en-GB")) == \
        f"{mine}\n\n- ⬜ Plan training (responsible, phase 2)"
    assert await server.say("my tasks", chat, EMMA) == msg("en", "assign.mine.none")
    assert "\n\nresponsible: Mette\n\n" in await server.say("show Plan training", chat, EMMA)
    assert "\n\nperformer: Lars Nielsen\n\n" in await server.say("show Appoint super users", chat, EMMA)
    assert await server.say("assign Plan training", chat, EMMA) != ""  # half a command: a helpful answer, no crash
    assert [e["action"] for e in audit_events(server.data_dir)].count("assign") == 2


async def test_assigning_oneself_with_mig_as_the_product_suggests(aarhus):
    reply = await aarhus.say("sæt mig som ansvarlig for Planlæg uddannelse", AARHUS)
    assert not reply.startswith("mig "), reply
    assert "Planlæg uddannelse (ansvarlig, fase 2)" in await aarhus.say("mine opgaver", AARHUS)


# -- local tasks ------------------------------------------------------------------------------------
LOCAL = "Informér MED-udvalget"
ADD = f"tilføj lokal opgave '{LOCAL}' i Forberedelse under Organisering og arbejdsgange"


def buttons(card: dict) -> list[tuple[str, dict]]:
    """(row text, Action.Submit data) for every task row of a next-tasks card."""
    out = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "ColumnSet" and len(node.get("columns", [])) == 2:
                label = node["columns"][0]["items"][0].get("text")
                actions = node["columns"][1]["items"][0].get("actions") or [{}]
                out.append((label, actions[0].get("data")))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(card)
    return out


async def test_a_local_task_through_its_whole_life(aarhus):
    server = aarhus
    rows, total = status_rows(await server.say("status", AARHUS))
    assert rows[2] == (0, PHASE_COUNT[2]) and total == (0, KLIK_COUNT)

    # Added step by step: the bot asks for what is missing.
    phases = "«1 Opstart», «2 Forberedelse», «3 Ibrugtagning» eller «4 Forankring»"
    assert await server.say(f"tilføj lokal opgave {LOCAL}", AARHUS) == \
        msg("da", "local.which_phase", title=LOCAL, options=phases)
    themes = [f"«{t['name']['da']}»" for t in THEMES]
    assert await server.say(f"tilføj lokal opgave {LOCAL} i Forberedelse", AARHUS) == \
        msg("da", "local.which_theme", title=LOCAL, options=", ".join(themes[:-1]) + " eller " + themes[-1])
    assert await server.say(ADD, AARHUS) == msg("da", "local.added", title=LOCAL, number=2, phase="Forberedelse",
                                                theme="Organisering og arbejdsgange")
    assert await server.say(ADD, AARHUS) == msg("da", "local.exists", title=LOCAL)
    [added] = [e for e in audit_events(server.data_dir) if e["action"] == "local_add"]
    local_id = added["task_id"]
    assert added["details"]["task"] == {"id": local_id, "phase": 2, "theme": "organisering", "title": LOCAL}

    # Listed in its phase (not in phase 1's list), numbered, with a Done button on the card.
    assert LOCAL not in await server.say("hvad skal vi nu?", AARHUS)
    before = len(server.connector.sent)
    text = await server.say("hvad skal vi nu i Forberedelse?", AARHUS)
    card = card_of(server.connector.sent[before])
    assert f"(0 af {PHASE_COUNT[2] + 1} udført)" in text.splitlines()[0]
    block = re.search(r"\*\*Organisering og arbejdsgange\*\*\n((?:\d+\. .+\n?)+)", text)[1].splitlines()
    number = int(block[-1].split(".")[0])
    assert block[-1] == f"{number}. {LOCAL}"
    assert (f"{number}. {LOCAL}", {"v": 1, "a": "done", "m": "0751", "task": local_id, "p": 2}) in buttons(card)
    rows, total = status_rows(await server.say("status", AARHUS))
    assert rows[2] == (0, PHASE_COUNT[2] + 1) and total == (0, KLIK_COUNT + 1)

    # Marked by number, undone by name, pressed on the card, undone by number, marked by name.
    progress = lambda done: msg("da", "mark.progress", number=2, phase="Forberedelse", done=done,  # noqa: E731
                                total=PHASE_COUNT[2] + 1)
    done_text = msg("da", "mark.done", task=LOCAL, who="Mette Hansen")
    assert await server.say(f"udført {number}", AARHUS) == f"{done_text}\n\n{progress(1)}"
    undone = msg("da", "reopen.done", task=LOCAL, who="Mette Hansen")
    assert await server.say(f"fortryd {LOCAL}", AARHUS) == f"{undone}\n\n{progress(0)}"
    data = dict(buttons(card))[f"{number}. {LOCAL}"]
    pressed = await server.exchange(server.activity(personal(1), METTE, value=data, replyToId="reply-card"))
    assert pressed["text"] == done_text  # personal chat: TENANT's only municipality is Aarhus
    [redrawn] = server.connector.updated
    assert redrawn["_path"].endswith("/activities/reply-card") and LOCAL not in json.dumps(redrawn, ensure_ascii=False)
    assert await server.say(f"fortryd {number}", AARHUS) == f"{undone}\n\n{progress(0)}"
    assert await server.say(f"marker {LOCAL} som udført", AARHUS) == f"{done_text}\n\n{progress(1)}"
    rows, total = status_rows(await server.say("status", AARHUS))
    assert rows[2] == (1, PHASE_COUNT[2] + 1) and total == (1, KLIK_COUNT + 1)

    # History names it; details say it is local.
    history = await server.say("historik", AARHUS)
    assert f"Mette Hansen tilføjede den lokale opgave «{LOCAL}»" in history
    assert history.count(f"Mette Hansen markerede «{LOCAL}» som udført") == 3
    assert history.count(f"Mette Hansen genåbnede «{LOCAL}»") == 2
    details = await server.say(f"vis {LOCAL}", AARHUS)
    assert details.startswith(f"**{LOCAL}**\n\n" + msg("da", "details.where", kind="Lokal opgave", number=2,
                                                       phase="Forberedelse", theme="Organisering og arbejdsgange"))
    assert "✅ Udført af Mette Hansen 27. nov. 2026 kl. 10.30." in details and "Tidsfrist" not in details

    # It survives a restart.
    await server.restart()
    assert status_rows(await server.say("status", AARHUS))[1] == (1, KLIK_COUNT + 1)

    # Another municipality has no such task and cannot touch Aarhus's.
    await server.say("tilmeld Odense", ODENSE)
    assert LOCAL not in await server.say("hvad skal vi nu i Forberedelse?", ODENSE)
    assert status_rows(await server.say("status", ODENSE))[1] == (0, KLIK_COUNT)
    for text in (f"vis {LOCAL}", f"udført {LOCAL}", f"fjern lokal opgave {LOCAL}"):
        reply = await server.say(text, ODENSE)
        assert reply.startswith("Jeg kan ikke finde en opgave, der hedder «Informér MED-udvalget»"), (text, reply)
    assert status_rows(await server.say("status", AARHUS))[1] == (1, KLIK_COUNT + 1)

    # A KLIK task cannot be removed; the local one can, and the counts are back.
    assert await server.say("fjern lokal opgave Planlæg uddannelse", AARHUS) == \
        msg("da", "local.not_local", title="Planlæg uddannelse")
    assert await server.say(f"fjern lokal opgave {LOCAL}", AARHUS) == msg("da", "local.removed", title=LOCAL)
    rows, total = status_rows(await server.say("status", AARHUS))
    assert rows[2] == (0, PHASE_COUNT[2]) and total == (0, KLIK_COUNT)
    assert LOCAL not in await server.say("hvad skal vi nu i Forberedelse?", AARHUS)
    assert (await server.say(f"vis {LOCAL}", AARHUS)).startswith("Jeg kan ikke finde en opgave")
    history = await server.say("historik", AARHUS)
    assert history.splitlines()[2].endswith(f"Mette Hansen fjernede den lokale opgave «{LOCAL}»")
    assert f"markerede «{LOCAL}» som udført" in history  # the removed task is still named in its history


async def test_markup_in_a_local_tasks_title_is_stripped(aarhus):
    reply = await aarhus.say("tilføj lokal opgave *fed* [link](x) i Opstart under Projektstyring", AARHUS)
    assert reply == msg("da", "local.added", title="fed link x", number=1, phase="Opstart",
                        theme="Projektstyring og -ledelse")
    before = len(aarhus.connector.sent)
    listing = await aarhus.say("hvad skal vi nu?", AARHUS)
    payload = json.dumps(aarhus.connector.sent[before:], ensure_ascii=False)
    assert "fed link x" in listing
    for markup in ("*fed*", "[link]", "](x)", "\\*", "\\["):
        assert markup not in payload
    [event] = [e for e in audit_events(aarhus.data_dir) if e["action"] == "local_add"]
    assert event["details"]["task"]["title"] == "fed link x"


async def test_a_local_task_in_english(server):
    chat = group_chat(5, tenant=OTHER_TENANT)
    await server.say("register Odense", chat, EMMA)
    title = "Inform the works council"
    asked = await server.say(f"add local task '{title}'", chat, EMMA)
    assert asked == msg("en", "local.which_phase", title=title,
                        options="«1 Start-up», «2 Preparation», «3 Adoption», or «4 Embedding»")
    asked = await server.say(f"add local task '{title}' in Preparation", chat, EMMA)
    assert asked.startswith(f"Which theme should «{title}» belong to: «Project management and leadership»")
    assert await server.say(f"add local task '{title}' in Preparation under Organisation and workflows", chat, EMMA) == \
        msg("en", "local.added", title=title, number=2, phase="Preparation", theme="Organisation and workflows")
    listing = await server.say("what's next in Preparation?", chat, EMMA)
    assert f"(0 of {PHASE_COUNT[2] + 1} done)" in listing
    number = int(re.search(rf"^(\d+)\. {title}$", listing, re.M)[1])
    progress = msg("en", "mark.progress", number=2, phase="Preparation", done=1, total=PHASE_COUNT[2] + 1)
    assert await server.say(f"done {number}", chat, EMMA) == \
        msg("en", "mark.done", task=title, who="Emma Smith") + "\n\n" + progress
    assert status_rows(await server.say("status", chat, EMMA), "en")[1] == (1, KLIK_COUNT + 1)
    details = await server.say(f"show {title}", chat, EMMA)
    assert msg("en", "details.where", kind="Local task", number=2, phase="Preparation",
               theme="Organisation and workflows") in details
    assert await server.say("remove local task Plan training", chat, EMMA) == \
        msg("en", "local.not_local", title="Plan training")
    assert await server.say(f"remove local task {title}", chat, EMMA) == msg("en", "local.removed", title=title)
    assert status_rows(await server.say("status", chat, EMMA), "en")[1] == (0, KLIK_COUNT)
    assert f"removed the local task «{title}»" in await server.say("history", chat, EMMA)


async def test_a_removed_local_task_stays_forgotten_after_a_restart(aarhus):
    for text in (ADD, f"udført {LOCAL}", f"fjern lokal opgave {LOCAL}"):
        await aarhus.say(text, AARHUS)
    await aarhus.restart()
    await aarhus.say(ADD, AARHUS)
    rows, _ = status_rows(await aarhus.say("status", AARHUS))
    assert rows[2] == (0, PHASE_COUNT[2] + 1)
    assert msg("da", "details.open") in await aarhus.say(f"vis {LOCAL}", AARHUS)


async def test_a_removed_local_task_leaves_no_assignment_behind(aarhus):
    for text in (ADD, f"sæt Lars Nielsen som udfører af {LOCAL}", f"fjern lokal opgave {LOCAL}", ADD):
        await aarhus.say(text, AARHUS)
    assert "udfører:" not in await aarhus.say(f"vis {LOCAL}", AARHUS)


# -- task details -----------------------------------------------------------------------------------
@pytest.mark.parametrize("lang", ["da", "en"])
async def test_task_details_and_the_deadline_before_and_after_a_golive(server, lang):
    where = channel() if lang == "da" else group_chat(6, tenant=OTHER_TENANT)
    who = METTE if lang == "da" else EMMA
    await server.say("tilmeld Aarhus" if lang == "da" else "register Odense", where, who)
    task = TASKS["planlaeg-uddannelse"]
    title = task["title"][lang]
    show = f"vis {title}" if lang == "da" else f"show {title}"
    details = await server.say(show, where, who)
    where_line = msg(lang, "details.where", kind=msg(lang, "details.klik"), number=2,
                     phase={"da": "Forberedelse", "en": "Preparation"}[lang],
                     theme={"da": "Viden og færdigheder", "en": "Knowledge and skills"}[lang])
    parts = details.split("\n\n")
    assert parts[:2] == [f"**{title}**", where_line]
    for field in ("description", "prerequisites", "result", "responsible"):
        assert f"**{msg(lang, f'details.{field}')}:** {task[field][lang]}" in parts
    weeks = task["deadline_weeks_before_go_live"]
    relative = msg(lang, "details.weeks_before", weeks=weeks)
    assert f"**{msg(lang, 'details.deadline')}:** {relative}" in parts
    assert msg(lang, "details.open") in parts

    golive = date(2027, 3, 1)
    said = "go-live er 1. marts 2027" if lang == "da" else "our go-live is 1 March 2027"
    assert day(lang, golive) in await server.say(said, where, who)
    parts = (await server.say(show, where, who)).split("\n\n")
    due = golive - timedelta(weeks=weeks)
    assert f"**{msg(lang, 'details.deadline')}:** {day(lang, due)} ({relative})" in parts
    assert due == date(2026, 12, 7)

    # A task due after go-live says so.
    after = TASKS["etabler-nye-arbejdsgange"]
    assert after["deadline_weeks_before_go_live"] < 0
    parts = (await server.say(f"{show.split()[0]} {after['title'][lang]}", where, who)).split("\n\n")
    due = golive - timedelta(weeks=after["deadline_weeks_before_go_live"])
    later = msg(lang, "details.weeks_after", weeks=-after["deadline_weeks_before_go_live"])
    assert f"**{msg(lang, 'details.deadline')}:** {day(lang, due)} ({later})" in parts
