"""Teams specifics: who and where a turn comes from, whether the bot was addressed, and mention stripping."""
from __future__ import annotations

from datetime import datetime

from botbuilder.schema import Activity

from dialogs.store import Actor
from dialogs.turn import Conversation, TurnInput

THREAD_MARK = ";messageid="


def channel_data(activity: Activity) -> dict:
    data = activity.channel_data
    return data if isinstance(data, dict) else {}


def tenant_id(activity: Activity) -> str | None:
    """Teams puts the tenant in channelData.tenant.id; botbuilder only reads conversation.tenantId.

    Only Teams vouches for it: on Web Chat or Direct Line the client writes channelData itself."""
    if activity.channel_id != "msteams":
        return None
    tenant = channel_data(activity).get("tenant")
    if isinstance(tenant, dict) and isinstance(tenant.get("id"), str):
        return tenant["id"]
    conversation = activity.conversation
    return getattr(conversation, "tenant_id", None) if conversation else None


def copy_tenant_to_conversation(activity: Activity) -> None:
    """So botbuilder's replies and proactive sends carry the tenant Teams told us about."""
    tenant = tenant_id(activity)
    if tenant and activity.conversation and not activity.conversation.tenant_id:
        activity.conversation.tenant_id = tenant


def conversation(activity: Activity) -> Conversation:
    conv_id = (activity.conversation.id if activity.conversation else "") or ""
    base = conv_id.split(THREAD_MARK, 1)[0]
    kind = (activity.conversation.conversation_type if activity.conversation else None) or "personal"
    team = channel_data(activity).get("team")
    team_id = team.get("id") if isinstance(team, dict) and isinstance(team.get("id"), str) else None
    if team_id and kind == "personal":
        kind = "channel"
    scope = f"team:{team_id}" if team_id else f"conversation:{base}"
    return Conversation(id=base, scope=scope, kind=kind, tenant_id=tenant_id(activity), thread=conv_id)


def user(activity: Activity) -> Actor:
    sender = activity.from_property
    if sender is None:
        return Actor(id="", name="")
    # An AAD object id (what consultants are listed by) only counts when Teams sent it.
    aad = sender.aad_object_id if activity.channel_id == "msteams" else None
    return Actor(id=aad or sender.id or "", name=sender.name or "")


def addressed(activity: Activity, where: Conversation) -> bool:
    """In group chats and channels the bot acts only when @mentioned; a personal chat is always addressed."""
    if where.kind == "personal" or isinstance(activity.value, dict):
        return True  # a card button press carries no text and no mention: it answers the bot's own card
    return any(_mentions_bot(activity, entity) for entity in activity.entities or [])


def _mentions_bot(activity: Activity, entity) -> bool:
    props = entity.additional_properties if hasattr(entity, "additional_properties") else {}
    if getattr(entity, "type", None) != "mention":
        return False
    mentioned = (props or {}).get("mentioned") or {}
    recipient = activity.recipient.id if activity.recipient else None
    return isinstance(mentioned, dict) and recipient is not None and mentioned.get("id") == recipient


def mentioned_people(activity: Activity) -> tuple[Actor, ...]:
    """People @mentioned in the message, other than the bot."""
    people = []
    for entity in activity.entities or []:
        props = getattr(entity, "additional_properties", None) or {}
        mentioned = props.get("mentioned")
        if getattr(entity, "type", None) != "mention" or not isinstance(mentioned, dict) or _mentions_bot(activity, entity):
            continue
        ids = [mentioned.get("aadObjectId"), mentioned.get("id")]
        name = mentioned.get("name")
        if isinstance(name, str) and name.strip():
            people.append(Actor(id=next((i for i in ids if isinstance(i, str) and i), ""), name=name.strip()[:80]))
    return tuple(people)


def user_ids(activity: Activity) -> frozenset[str]:
    sender = activity.from_property
    if sender is None:
        return frozenset()
    return frozenset(i for i in (sender.aad_object_id, sender.id) if isinstance(i, str) and i)


def text_without_mention(activity: Activity) -> str:
    text = activity.text if isinstance(activity.text, str) else ""
    for entity in activity.entities or []:
        props = getattr(entity, "additional_properties", None) or {}
        if _mentions_bot(activity, entity) and isinstance(props.get("text"), str):
            text = text.replace(props["text"], " ")
    return text.strip()


def turn_input(activity: Activity, now: datetime) -> TurnInput:
    return TurnInput(
        text=text_without_mention(activity),
        user=user(activity),
        conversation=conversation(activity),
        now=now,
        locale=activity.locale if isinstance(activity.locale, str) else None,
        value=activity.value if isinstance(activity.value, dict) else None,
        mentions=mentioned_people(activity),
        user_ids=user_ids(activity),
    )
