"""Which phase a message means: the named one, else a default, else a question."""
from __future__ import annotations

from dialogs.context import Ctx
from dialogs.markdown import esc
from dialogs.turn import Reply
from dialogs.understanding import Understanding


def phase_or_reply(ctx: Ctx, u: Understanding, default: int | None) -> int | Reply:
    """The phase's number, or the reply that asks which phase."""
    if "phase" in u.unresolved:
        return Reply(ctx.t("phase.unknown", text=esc(str(u.slots["phase"])), options=ctx.phase_options()))
    number = u.slots.get("phase") or default
    if number is None:
        return Reply(ctx.t("phase.which", options=ctx.phase_options()))
    return int(number)
