""""sæt Mette som ansvarlig for Planlæg uddannelse" / "tildel Udpeg superbrugere til @Lars" / "mine opgaver".

As in KLIK, a task has a responsible person (ansvarlig) and a performer (udfører). A Teams @mention gives
the person's ids, so "mine opgaver" finds them; a plain name is kept as typed."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from dialogs.confirm_question import pending_question
from dialogs.context import Ctx
from dialogs.markdown import esc
from dialogs.need import municipality_or_reply
from dialogs.progress import is_done, tasks_of
from dialogs.store import AuditEvent, MunicipalityState
from dialogs.task_ref import municipality_and_task
from dialogs.text import fold
from dialogs.turn import Reply
from dialogs.understanding import Understanding

ROLES = ("responsible", "performer")


def person_of(ctx: Ctx, typed: str | dict[str, Any]) -> dict[str, Any]:
    """The @mentioned person whose name was typed, else just the name; "@me" is the sender. A dict is a person
    found when the question was asked ("Skal jeg sætte Lars …?"): the "ja" carries no mention."""
    if isinstance(typed, dict):
        return {"id": str(typed.get("id", "")), "name": str(typed.get("name", ""))[:80]}
    if typed == "@me":
        return asdict(ctx.turn.user)
    wanted = fold(typed.lstrip("@").strip())
    for person in ctx.turn.mentions:
        if fold(person.name) == wanted or (fold(person.name).startswith(wanted) and wanted):
            return asdict(person)
    return {"id": "", "name": typed.lstrip("@").strip()[:80]}


def is_mine(ctx: Ctx, person: Mapping[str, Any] | None) -> bool:
    if not person:
        return False
    if person.get("id"):
        return person["id"] in ctx.turn.user_ids or person["id"] == ctx.turn.user.id
    return bool(person.get("name")) and fold(person["name"]) == fold(ctx.turn.user.name)


def assignment_text(ctx: Ctx, assignment: Mapping[str, Any] | None) -> str:
    """"ansvarlig: Mette · udfører: Lars", or "" when nobody is assigned."""
    parts = [f"{ctx.t(f'assign.role.{role}')}: {esc((assignment or {}).get(role, {}).get('name', ''))}"
             for role in ROLES if (assignment or {}).get(role)]
    return " · ".join(parts)


async def handle(ctx: Ctx, u: Understanding) -> Reply:
    found = await municipality_and_task(ctx, u)
    if isinstance(found, Reply):
        return found
    code, task = found
    role = u.slots.get("role")
    raw = u.slots.get("person", "")
    person = person_of(ctx, raw if isinstance(raw, dict) else str(raw))
    if role not in ROLES or not person["name"]:
        return Reply(ctx.t("assign.how"))
    turn = ctx.turn

    def decide(state: MunicipalityState) -> tuple[list[AuditEvent], Mapping[str, Any] | None]:
        current = (state.assignments.get(task.id) or {}).get(role)
        if current and not u.slots.get("replace") and fold(current.get("name", "")) != fold(person["name"]):
            return [], current  # someone already has the role: replacing them is asked about first
        return [AuditEvent(code, "assign", task.id, turn.user, turn.now.isoformat(), turn.conversation.id,
                           details={"role": role, "person": person})], None

    current = await ctx.store.change(code, decide)
    if current is not None:
        question = ctx.t("assign.replace", task=task.title.get(ctx.lang), role=ctx.t(f"assign.role.{role}"),
                         current=esc(current.get("name", "")), person=esc(person["name"]))
        return await pending_question(ctx, "assign", {**u.slots, "person": person, "task": task.id, "replace": True},
                                      question)
    return Reply(ctx.t(f"assign.done.{role}", person=esc(person["name"]), task=task.title.get(ctx.lang)))


async def my_tasks(ctx: Ctx, u: Understanding) -> Reply:
    code = await municipality_or_reply(ctx)
    if isinstance(code, Reply):
        return code
    state = await ctx.store.municipality(code)
    lines = []
    for task in tasks_of(ctx.content, state):
        assignment = state.assignments.get(task.id, {})
        roles = [ctx.t(f"assign.role.{role}") for role in ROLES if is_mine(ctx, assignment.get(role))]
        if roles:
            mark = "✅" if is_done(state, task.id) else "⬜"
            lines.append(f"- {mark} {task.title.get(ctx.lang)} ({ctx.all_of(roles)}, "
                         f"{ctx.t('word.phase')} {task.phase})")
    if not lines:
        return Reply(ctx.t("assign.mine.none"))
    return Reply(ctx.t("assign.mine.header") + "\n\n" + "\n".join(lines))


async def who(ctx: Ctx, u: Understanding) -> Reply:
    """"hvem er ansvarlig for Planlæg uddannelse?": the task's ansvarlig and udfører, or that nobody is set."""
    found = await municipality_and_task(ctx, u)
    if isinstance(found, Reply):
        return found
    code, task = found
    state = await ctx.store.municipality(code)
    title = task.title.get(ctx.lang)
    assigned = assignment_text(ctx, state.assignments.get(task.id))
    if not assigned:
        return Reply(ctx.t("assign.nobody", task=title))
    return Reply(ctx.t("assign.who", task=title, assigned=assigned))
