"""botbuilder's CloudAdapter with one cost taken out of every reply.

TurnContext.send_activities deep-copies each outgoing activity before addressing it to the conversation,
so the caller's object is not changed. Our replies carry an Adaptive Card (a few hundred nested dicts), and
that copy was ~5 % of a turn's CPU. Addressing only sets top-level fields, so a shallow copy protects the
caller just as well; and the conversation reference the reply is addressed with is built with the same
cheap copies. Everything else (middleware, handlers, invoke responses, authentication) is the SDK's.
"""
from __future__ import annotations

from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity, ActivityTypes, ConversationReference, DeliveryModes, ResourceResponse
from botframework.connector import Channels


class ReplyTurnContext(TurnContext):
    async def send_activities(self, activities: list[Activity]) -> list[ResourceResponse]:
        # The SDK's method (botbuilder-core 4.17.1, which is final), with copy() where it had deepcopy().
        reference = _reference(self.activity)
        sent_non_trace = False
        output = []
        for activity in activities:
            activity = TurnContext.apply_conversation_reference(_shallow_copy(activity), reference)
            if not getattr(activity, "type", None):
                activity.type = ActivityTypes.message
            sent_non_trace = sent_non_trace or activity.type != ActivityTypes.trace
            if not activity.input_hint:
                activity.input_hint = "acceptingInput"
            activity.id = None
            output.append(activity)

        async def logic():
            if self.activity.delivery_mode == DeliveryModes.expect_replies:
                responses = []
                for activity in output:
                    self.buffered_reply_activities.append(activity)
                    if activity.type == ActivityTypes.invoke_response:
                        self.turn_state[TurnContext._INVOKE_RESPONSE_KEY] = activity
                    responses.append(ResourceResponse())
            else:
                responses = await self.adapter.send_activities(self, output)
            if sent_non_trace:
                self.responded = True
            return responses

        return await self._emit(self._on_send_activities, output, logic())


def _shallow_copy(model):
    """What copy.copy does for a model (a new object sharing the field values), without its generic
    __reduce_ex__ protocol, which costs several times more."""
    if model is None:
        return None
    duplicate = object.__new__(type(model))
    duplicate.__dict__.update(model.__dict__)
    return duplicate


def _reference(activity: Activity) -> ConversationReference:
    """TurnContext.get_conversation_reference (botbuilder-core 4.17.1), with _shallow_copy for copy."""
    keeps_id = activity.type != ActivityTypes.conversation_update and activity.channel_id not in (
        Channels.direct_line, Channels.webchat)
    return ConversationReference(
        activity_id=activity.id if keeps_id else None,
        user=_shallow_copy(activity.from_property),
        bot=_shallow_copy(activity.recipient),
        conversation=_shallow_copy(activity.conversation),
        channel_id=activity.channel_id,
        locale=activity.locale,
        service_url=activity.service_url,
    )


class AssistantAdapter(CloudAdapter):
    def _create_turn_context(self, *args, **kwargs) -> TurnContext:
        stock = super()._create_turn_context(*args, **kwargs)
        context = ReplyTurnContext(stock)  # the SDK's copy-constructor: all but the turn state, which it resets
        context.turn_state.update(stock.turn_state)
        return context
