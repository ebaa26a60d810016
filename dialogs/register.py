""""tilmeld Aarhus" / "register Odense" / "kommune 751": bind this conversation (or team) to a municipality."""
from __future__ import annotations

from dialogs.confirm_question import pending_question
from dialogs.context import Ctx
from dialogs.markdown import esc
from dialogs.store import Registration
from dialogs.turn import Reply
from dialogs.understanding import Understanding


async def handle(ctx: Ctx, u: Understanding) -> Reply:
    code = u.slots.get("municipality")
    if "municipality" in u.unresolved or not code:
        return _unknown(ctx, str(code or ""), u)
    conv = ctx.turn.conversation
    name = ctx.municipality_name(code)
    existing = await ctx.store.registration(conv.scope)
    if existing and existing.code == code and existing.tenant_id == conv.tenant_id:
        return Reply(ctx.t("register.already", name=name))
    if existing and not u.slots.get("switch"):  # moving a team's data to another municipality is asked about first
        question = ctx.t("register.switch", name=name, previous=ctx.municipality_name(existing.code))
        return await pending_question(ctx, "register", {"municipality": code, "switch": True}, question)
    registration = Registration(scope=conv.scope, code=code, tenant_id=conv.tenant_id, by=ctx.turn.user,
                                at=ctx.turn.now.isoformat())
    owner = await ctx.store.register(registration, conv.id)
    if owner is not None:
        return Reply(ctx.t("tenant.refused", name=name))
    ctx.forget_lookup()  # the reply belongs to the new municipality (the bot remembers this conversation for it)
    municipality = ctx.content.known_municipality(code)
    lines = [ctx.t("register.done.team" if conv.scope.startswith("team:") else "register.done", name=name,
                   code=code, region=municipality.region)]
    if existing:
        lines.append(ctx.t("register.switched", previous=ctx.municipality_name(existing.code)))
    lines.append(ctx.t("register.next"))
    return Reply("\n\n".join(lines))


def _unknown(ctx: Ctx, raw: str, u: Understanding) -> Reply:
    lookup = u.unresolved.get("municipality")
    candidates = list(lookup.candidates) if lookup else []
    if not candidates and raw:
        candidates = ctx.services.understander.municipalities.suggest(raw)
    if not candidates:
        return Reply(ctx.t("register.how"))
    names = [ctx.content.known_municipality(c).name for c in candidates[:3]]
    return Reply(ctx.t("register.unknown", text=esc(raw) or "?", options=ctx.either(names), example=names[0]))

