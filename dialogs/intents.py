"""Each intent of content/intents.yaml bound to the dialog that answers it, checked at start-up.

The registry names a handler as "module.function" in dialogs/; a name that does not resolve to a coroutine
stops start-up with the intent and the name, so a typo in the data never reaches a user as a crash.
"""
from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable, Mapping

from content import ContentError
from content.schema import IntentSpec
from dialogs.context import Ctx
from dialogs.turn import Reply
from dialogs.understanding import Understanding

Handler = Callable[[Ctx, Understanding], Awaitable[Reply]]


def bind(intents: Mapping[str, IntentSpec]) -> dict[str, Handler]:
    handlers: dict[str, Handler] = {}
    for name, spec in intents.items():
        module_name, function_name = spec.handler.split(".")
        try:
            module = importlib.import_module(f"dialogs.{module_name}")
        except ModuleNotFoundError:
            raise ContentError(f"content/intents.yaml: intents.{name}.handler: no module dialogs/{module_name}.py") from None
        handler = getattr(module, function_name, None)
        if not inspect.iscoroutinefunction(handler):
            raise ContentError(f"content/intents.yaml: intents.{name}.handler: dialogs/{module_name}.py has no "
                               f"coroutine '{function_name}'")
        handlers[name] = handler
    return handlers
