""""historik" / "hvem markerede Udpeg projektleder?": the municipality's audit trail, newest first."""
from __future__ import annotations

from datetime import datetime, time, timedelta

from content import Task
from dialogs import events
from dialogs.context import COPENHAGEN, Ctx
from dialogs.markdown import bullets
from dialogs.need import municipality_or_reply
from dialogs.store import AuditEvent
from dialogs.task_ref import task_or_reply
from dialogs.turn import Reply
from dialogs.understanding import Understanding


def _line(ctx: Ctx, event: AuditEvent) -> str:
    # Events without a task (register, rebind, forget, milestone, phase) are about the municipality.
    task = ctx.content.task(event.task_id or "")
    details = event.details or {}
    local = details.get("title") or (details.get("task") or {}).get("title")  # local tasks carry their title
    title = task.title.get(ctx.lang) if task else (local or event.task_id or "")
    return ctx.t(f"history.{event.action}", when=ctx.when(event.at), who=ctx.who(event.by), task=title,
                 detail=events.kind_of(event).detail(ctx, event))


async def handle(ctx: Ctx, u: Understanding) -> Reply:
    code = await municipality_or_reply(ctx)
    if isinstance(code, Reply):
        return code
    task: Task | None = None
    if "task" in u.slots:
        found = await task_or_reply(ctx, u)
        if isinstance(found, Reply):
            return found
        task = found
    period = u.slots.get("period")
    since = _since(ctx, period)
    events = await ctx.store.audit(code, task.id if task else None, limit=50 if since else 15)
    if since:
        events = [e for e in events if datetime.fromisoformat(e.at) >= since][:15]
    if not events:
        if since:
            return Reply(ctx.t(f"history.none.{period}"))
        key = "history.none.task" if task else "history.none"
        return Reply(ctx.t(key, task=task.title.get(ctx.lang) if task else ""))
    if task:
        header = ctx.t("history.header.task", task=task.title.get(ctx.lang))
    elif since:
        header = ctx.t(f"history.header.{period}", name=ctx.municipality_name(code))
    else:
        header = ctx.t("history.header", name=ctx.municipality_name(code))
    return Reply(header + "\n\n" + bullets([_line(ctx, e) for e in events]))


def _since(ctx: Ctx, period: object) -> datetime | None:
    """The start of "i dag", "i går" or "den sidste uge", in Danish time."""
    days = {"today": 0, "yesterday": 1, "week": 7}.get(str(period))
    if days is None:
        return None
    start = datetime.combine(ctx.today() - timedelta(days=days), time.min, tzinfo=COPENHAGEN)
    return start
