"""Bot Framework's ActivityHandler, kept thin: it translates a turn for the core and sends the reply."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import cast

import aiohttp
from botbuilder.core import ActivityHandler, CardFactory, InvokeResponse, MessageFactory, TurnContext
from botbuilder.schema import ChannelAccount, TextFormatTypes

from bot import teams
from bot.connector import ConnectorError
from bot.exports import SharedExportShelf
from bot.metrics import Metrics
from bot.wire import to_wire
from dialogs import cards
from dialogs.assistant import Assistant
from dialogs.store import ConversationRecord
from dialogs.turn import Conversation, Reply

log = logging.getLogger(__name__)


# Teams announces one installation twice (conversationUpdate and installationUpdate): greet once.
GREETING_QUIET = timedelta(minutes=2)


class AssistantBot(ActivityHandler):
    def __init__(self, assistant: Assistant, clock: Callable[[], datetime], shelf: SharedExportShelf | None = None,
                 download_base: str = "http://localhost:3978", metrics: Metrics | None = None):
        self.assistant = assistant
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.shelf = shelf or SharedExportShelf(assistant.services.store)
        self.download_base = download_base

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        turn = teams.turn_input(activity, self.clock())
        if not teams.addressed(activity, turn.conversation):
            return  # a channel message not meant for the bot
        reply = await self.assistant.on_message(turn)
        self.metrics.turns.labels(reply.intent or "unknown", "failed" if reply.incident else "ok").inc()
        if reply.file:
            reply = await self._with_download(reply)
        try:
            await _send(turn_context, reply)
        except (TimeoutError, ConnectorError, aiohttp.ClientError) as error:
            # The Connector did not take the reply, even after its retries. What the turn changed is saved (the
            # audit trail was synced before the reply was built); the person simply gets no answer this time.
            log.error("reply not delivered", extra={"activity_id": activity.id, "intent": reply.intent,
                                                    "error": type(error).__name__,
                                                    "status": getattr(error, "status", None)})
            self.metrics.replies_failed.inc()
        if reply.municipality:
            await self._remember(turn_context, turn.conversation, reply)

    async def _with_download(self, reply: Reply) -> Reply:
        """A file becomes a short-lived link: a button on a card, the address in text."""
        assert reply.file is not None  # called for replies with a file only
        name, data = reply.file
        url = f"{self.download_base}/exports/{await self.shelf.put(name, data)}"
        text = f"{reply.text}\n\n[{name}]({url})"
        card = cards.card([cards.text(reply.text)], text, [cards.open_url(reply.file_label or name, url)])
        return replace(reply, text=text, card=card, file=None)

    async def _remember(self, turn_context: TurnContext, where: Conversation, reply: Reply) -> None:
        """Where proactive messages for this municipality can go: this conversation, at its root (not a thread)."""
        activity = turn_context.activity
        store = self.assistant.services.store
        key, scope = where.id, where.scope
        fingerprint = (reply.municipality, reply.language, scope, activity.service_url, activity.channel_id,
                       activity.recipient.id if activity.recipient else None, activity.conversation.tenant_id)
        if reply.municipality is None or store.conversation_known(key, fingerprint):
            return  # the common case: nothing changed, so no reference is built or serialised
        reference = TurnContext.get_conversation_reference(activity)
        reference.conversation.id = key
        reference.activity_id = None
        reference.user = None  # not needed to post in the conversation, and personal data
        await store.remember_conversation(ConversationRecord(
            key=key, code=reply.municipality, reference=cast(dict, to_wire(reference)), language=reply.language,
            scope=scope),
            fingerprint)

    async def on_members_removed_activity(self, members_removed: list[ChannelAccount], turn_context: TurnContext) -> None:
        if _includes_bot(members_removed, turn_context):
            await self._forget_conversation(turn_context)

    async def on_installation_update_remove(self, turn_context: TurnContext) -> None:
        await self._forget_conversation(turn_context)

    async def _forget_conversation(self, turn_context: TurnContext) -> None:
        await self.assistant.services.store.deactivate_conversation(teams.conversation(turn_context.activity).id)

    async def on_members_added_activity(self, members_added: list[ChannelAccount], turn_context: TurnContext) -> None:
        if _includes_bot(members_added, turn_context):
            await self._greet(turn_context)

    async def on_installation_update_add(self, turn_context: TurnContext) -> None:
        await self._greet(turn_context)

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        response = await super().on_invoke_activity(turn_context)
        if response is not None and response.status == 501:
            # The SDK answers invokes it has no handler for with 501; to Teams that is a server fault.
            # The bot offers no message extensions or task modules, so say "not supported" as a client error.
            return InvokeResponse(status=400, body={"error": "this invoke is not supported by the bot"})
        return response

    async def _greet(self, turn_context: TurnContext) -> None:
        turn = teams.turn_input(turn_context.activity, self.clock())
        # Claimed in the store: the two announcements may reach two instances.
        if not await self.assistant.services.store.claim_greeting(turn.conversation.id, turn.now, GREETING_QUIET):
            return
        reply = await self.assistant.on_added(turn)
        await _send(turn_context, reply)


def _includes_bot(members: list[ChannelAccount] | None, turn_context: TurnContext) -> bool:
    """A membership change is about the bot when the bot (the activity's recipient) is among the members."""
    recipient = turn_context.activity.recipient
    return bool(recipient) and any(m and m.id == recipient.id for m in members or [])


# Clients that render Adaptive Cards; elsewhere (and in `python -m bot chat`) the text twin is the answer.
CARD_CHANNELS = {"msteams", "webchat", "directline", "emulator", "agents"}


async def _send(turn_context: TurnContext, reply: Reply) -> None:
    activity = turn_context.activity
    card_channel = activity.channel_id in CARD_CHANNELS
    if card_channel and reply.replace_card and activity.reply_to_id:
        # A button press: redraw the pressed card in place with the new state.
        updated = MessageFactory.attachment(CardFactory.adaptive_card(reply.replace_card))
        updated.id = activity.reply_to_id
        try:
            await turn_context.update_activity(updated)
        except ConnectorError as error:  # the card may be gone; the change is saved and the note still goes out
            log.warning("card not redrawn", extra={"activity_id": activity.id, "status": error.status})
    if card_channel and reply.card:
        message = MessageFactory.attachment(CardFactory.adaptive_card(reply.card))
        if reply.note:
            message.text = reply.note
    elif card_channel and reply.replace_card and reply.note:
        message = MessageFactory.text(reply.note)  # the card shows the rest
    else:
        message = MessageFactory.text(reply.text)
    message.text_format = TextFormatTypes.markdown
    await turn_context.send_activity(message)
