""""tilføj lokal opgave 'Informér MED-udvalget' i Forberedelse under Organisering og arbejdsgange":
a municipality's own task. It is listed, marked, undone, audited and counted like a KLIK task, shown as
local, and only that municipality has it; it can remove it again."""
from __future__ import annotations

import hashlib
import re

from dialogs.context import Ctx
from dialogs.markdown import esc
from dialogs.need import municipality_or_reply
from dialogs.store import AuditEvent, MunicipalityState
from dialogs.task_ref import municipality_and_task
from dialogs.turn import Reply
from dialogs.understanding import Understanding

MAX_LOCAL = 50  # per municipality: KLIK's lists stay readable
_MARKUP = re.compile(r"[\\`*_{}\[\]<>#|~]")


async def add(ctx: Ctx, u: Understanding) -> Reply:
    code = await municipality_or_reply(ctx)
    if isinstance(code, Reply):
        return code
    # The title is shown in every task list: no Markdown or card markup may come in with it.
    title = " ".join(_MARKUP.sub(" ", str(u.slots.get("title", ""))).split()).strip(" '\"«»“”")[:120]
    themes = ctx.either([t.name.get(ctx.lang) for t in ctx.content.themes])
    if not title:
        return Reply(ctx.t("local.how"))
    if "phase" in u.unresolved or not u.slots.get("phase"):
        return Reply(ctx.t("local.which_phase", title=esc(title), options=ctx.phase_options()))
    if "theme" in u.unresolved or not u.slots.get("theme"):
        return Reply(ctx.t("local.which_theme", title=esc(title), options=themes))
    task_id = "lokal-" + hashlib.sha256(f"{code}|{title.lower()}".encode()).hexdigest()[:10]
    entry = {"id": task_id, "phase": int(u.slots["phase"]), "theme": u.slots["theme"], "title": title}
    turn = ctx.turn

    def decide(state: MunicipalityState) -> tuple[list[AuditEvent], Reply | None]:
        if len(state.local_tasks) >= MAX_LOCAL:
            return [], Reply(ctx.t("local.too_many", limit=MAX_LOCAL))
        if any(t["title"].lower() == title.lower() for t in state.local_tasks):
            return [], Reply(ctx.t("local.exists", title=esc(title)))
        return [AuditEvent(code, "local_add", task_id, turn.user, turn.now.isoformat(), turn.conversation.id,
                           details={"task": entry})], None

    refused = await ctx.store.change(code, decide)
    if refused:
        return refused
    phase = ctx.content.phase(entry["phase"]).name.get(ctx.lang)
    theme = ctx.content.theme(entry["theme"]).name.get(ctx.lang)
    return Reply(ctx.t("local.added", title=esc(title), number=entry["phase"], phase=phase, theme=theme))


async def remove(ctx: Ctx, u: Understanding) -> Reply:
    found = await municipality_and_task(ctx, u)
    if isinstance(found, Reply):
        return found
    code, task = found
    if not task.local:
        return Reply(ctx.t("local.not_local", title=task.title.get(ctx.lang)))
    turn = ctx.turn
    await ctx.store.record(AuditEvent(code, "local_remove", task.id, turn.user, turn.now.isoformat(),
                                      turn.conversation.id, details={"title": task.title.da}))
    return Reply(ctx.t("local.removed", title=esc(task.title.da)))
