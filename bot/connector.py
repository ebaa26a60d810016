"""A Bot Connector client on one keep-alive aiohttp session, behind botbuilder's own interfaces.

Why: botbuilder 4.17's ConnectorFactory builds, for every turn, a new msrest ConnectorClient (with a retry
policy built per client) and a new UserTokenClient, and sends replies through `requests` in a thread pool
with a new session, and new credentials (so no token reuse). That is ~10 ms of CPU per turn before any
HTTP. `FastAuthentication` keeps botbuilder's authentication (JWT validation, claims, audiences) and only
swaps what it hands the CloudAdapter for sending: a client that POSTs the same requests on a shared
session, with credentials and tokens cached per audience.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from urllib.parse import quote

import aiohttp
import yarl
from botbuilder.schema import Activity, ConversationParameters, ConversationResourceResponse, ResourceResponse
from botframework.connector.auth import (
    AppCredentials,
    AuthenticateRequestResult,
    BotFrameworkAuthentication,
    ClaimsIdentity,
    ConnectorFactory,
    UserTokenClient,
)
from botframework.connector.auth.jwt_token_validation import JwtTokenValidation

from bot.wire import to_json

USER_AGENT = "Microsoft-BotFramework/3.1 (BotBuilder Python/4.17.1; kombit-implementeringsassistent)"
TOKEN_REUSE_SECONDS = 600  # MSAL tokens live about an hour; ask MSAL (which refreshes) every 10 minutes
# A Connector that is throttling (429), wobbling (5xx) or unreachable (no connection) gets the call again, after
# its Retry-After or these pauses, as long as the whole call stays within RETRY_BUDGET seconds: a reply late by
# seconds is still worth sending, one late by a minute reads as the bot ignoring the person. A call cut off after it
# was sent (a read timeout, a dropped connection) is not repeated: the Connector may have posted it, and the
# person would see the answer twice.
RETRY_PAUSES = (0.25, 1.0, 2.0, 4.0)
RETRY_BUDGET = 12.0
MAX_RETRY_AFTER = 8.0  # a longer Retry-After than this is not waited for within a turn (nor by the nudges)


class ConnectorError(Exception):
    """The Connector answered with an error. `status` and `retry_after` (seconds) drive retries."""

    def __init__(self, status: int, body: str, retry_after: float | None = None):
        super().__init__(f"Connector answered {status}: {body[:200]}")
        self.status = status
        self.retry_after = retry_after


class _TokenCache:
    def __init__(self, credentials: AppCredentials):
        self.credentials = credentials
        self._token = ""
        self._fetched = float("-inf")  # not 0: time.monotonic() counts from boot, and a host may be young
        self._lock = asyncio.Lock()

    async def header(self) -> dict[str, str]:
        if not getattr(self.credentials, "microsoft_app_id", None):
            return {}  # local mode: no app id, no token (Playground, tests)
        if time.monotonic() - self._fetched > TOKEN_REUSE_SECONDS:
            async with self._lock:
                if time.monotonic() - self._fetched > TOKEN_REUSE_SECONDS:
                    # MSAL's call is blocking (network on a cache miss): keep it off the event loop.
                    self._token = await asyncio.to_thread(self.credentials.get_access_token)
                    self._fetched = time.monotonic()
        return {"Authorization": f"Bearer {self._token}"}


class _Conversations:
    """The subset of botframework.connector's ConversationsOperations that CloudAdapter calls."""

    def __init__(self, session: aiohttp.ClientSession, service_url: str, tokens: _TokenCache,
                 on_retry: Callable[[str], None] | None = None, retries: bool = True):
        self._session = session
        self._base = service_url.rstrip("/") + "/v3/conversations"
        self._tokens = tokens
        self._on_retry = on_retry
        self._pauses = RETRY_PAUSES if retries else ()

    async def _call(self, method: str, path: str, body: object | None, extra_headers: dict | None = None) -> dict:
        """One Connector call, retried on 429, 5xx and a failed connection within RETRY_BUDGET (RETRY_PAUSES)."""
        deadline, pauses = time.monotonic() + RETRY_BUDGET, self._pauses
        for attempt in range(len(pauses) + 1):
            try:
                left = max(1.0, deadline - time.monotonic())  # no attempt runs past the budget
                return await self._call_once(method, path, body, extra_headers, aiohttp.ClientTimeout(total=left))
            except ConnectorError as error:
                wait = error.retry_after
                if not (error.status == 429 or error.status >= 500) or attempt == len(pauses) \
                        or (wait is not None and wait > MAX_RETRY_AFTER):
                    raise
                pause = wait if wait is not None else pauses[attempt]
                if time.monotonic() + pause > deadline:
                    raise
                reason = str(error.status)
            except aiohttp.ClientConnectorError:  # no connection was made: nothing was sent
                pause, reason = pauses[attempt] if attempt < len(pauses) else 0.0, "connect"
                if attempt == len(pauses) or time.monotonic() + pause > deadline:
                    raise
            if self._on_retry is not None:
                self._on_retry(reason)
            await asyncio.sleep(pause)
        raise AssertionError("unreachable")

    async def _call_once(self, method: str, path: str, body: object | None, extra_headers: dict | None,
                         timeout: aiohttp.ClientTimeout) -> dict:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **(extra_headers or {}),
                   **await self._tokens.header()}
        payload = None
        if body is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
            payload = to_json(body)
        # encoded=True: the path is percent-encoded here, as botbuilder sends it; yarl would otherwise decode
        # "%3B" back to ";" in a thread's conversation id, which some proxies read as a path parameter.
        url = yarl.URL(self._base + path, encoded=True)
        async with self._session.request(method, url, data=payload, headers=headers, timeout=timeout) as response:
            raw = await response.read()
            if response.status >= 400:
                retry_after = response.headers.get("Retry-After")
                raise ConnectorError(response.status, raw.decode("utf-8", "replace"), _seconds(retry_after))
            try:
                answer = json.loads(raw) if raw.strip() else {}
            except ValueError:
                return {}
            return answer if isinstance(answer, dict) else {}

    async def reply_to_activity(self, conversation_id: str, activity_id: str, activity: Activity, **_) -> ResourceResponse:
        data = await self._call("POST", f"/{quote(conversation_id, safe='')}/activities/{quote(activity_id, safe='')}",
                                activity, {"x-ms-conversation-id": conversation_id})
        return ResourceResponse(id=data.get("id", ""))

    async def send_to_conversation(self, conversation_id: str, activity: Activity, **_) -> ResourceResponse:
        data = await self._call("POST", f"/{quote(conversation_id, safe='')}/activities", activity)
        return ResourceResponse(id=data.get("id", ""))

    async def update_activity(self, conversation_id: str, activity_id: str, activity: Activity, **_) -> ResourceResponse:
        data = await self._call("PUT", f"/{quote(conversation_id, safe='')}/activities/{quote(activity_id, safe='')}",
                                activity)
        return ResourceResponse(id=data.get("id", activity_id))

    async def delete_activity(self, conversation_id: str, activity_id: str, **_) -> None:
        await self._call("DELETE", f"/{quote(conversation_id, safe='')}/activities/{quote(activity_id, safe='')}", None)

    async def create_conversation(self, parameters: ConversationParameters, **_) -> ConversationResourceResponse:
        data = await self._call("POST", "", parameters)
        return ConversationResourceResponse.deserialize(data)


def _seconds(retry_after: str | None) -> float | None:
    """Retry-After in seconds ("2", "0.5"); an HTTP date or nonsense counts as none (the pauses apply)."""
    try:
        value = float(retry_after) if retry_after else None
    except ValueError:
        return None
    return value if value is not None and 0 <= value < 86400 else None


class FastConnectorClient:
    def __init__(self, session: aiohttp.ClientSession, service_url: str, tokens: _TokenCache,
                 on_retry: Callable[[str], None] | None = None, retries: bool = True):
        self.conversations = _Conversations(session, service_url, tokens, on_retry, retries)


class _FastConnectorFactory(ConnectorFactory):
    """`retries`: replies within a turn are retried here; proactive messages (nudges) are not, as their sender
    retries them itself within its sweep's budget and leaves the rest to the next sweep."""

    def __init__(self, inner: ConnectorFactory, owner: FastAuthentication, retries: bool = True):
        self._inner = inner
        self._owner = owner
        self._retries = retries

    async def create(self, service_url: str, audience: str | None = None) -> FastConnectorClient:
        inner = self._inner  # botbuilder's _ConnectorFactoryImpl: the SDK is frozen at 4.17.1, its fields too
        audience = audience or inner._to_channel_from_bot_oauth_scope
        key = (inner._app_id, audience)
        tokens = self._owner.tokens.get(key)
        if tokens is None:
            credentials = await inner._credential_factory.create_credentials(
                inner._app_id, audience, inner._login_endpoint, inner._validate_authority)
            tokens = self._owner.tokens.setdefault(key, _TokenCache(credentials))
        return FastConnectorClient(self._owner.session(), service_url, tokens, self._owner.on_retry, self._retries)


class FastAuthentication(BotFrameworkAuthentication):
    """botbuilder's authentication, with cached clients for sending."""

    def __init__(self, inner: BotFrameworkAuthentication):
        self._inner = inner
        self._session: aiohttp.ClientSession | None = None
        self.tokens: dict[tuple, _TokenCache] = {}
        self._user_token_clients: dict[str, UserTokenClient] = {}
        self.on_retry: Callable[[str], None] | None = None  # told each retried call's reason (metrics)

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=60),
                timeout=aiohttp.ClientTimeout(total=30, connect=10))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def authenticate_request(self, activity: Activity, auth_header: str) -> AuthenticateRequestResult:
        result = await self._inner.authenticate_request(activity, auth_header)
        if result.connector_factory is not None:
            result.connector_factory = _FastConnectorFactory(result.connector_factory, self)
        return result

    async def authenticate_streaming_request(self, auth_header: str, channel_id_header: str) -> AuthenticateRequestResult:
        return await self._inner.authenticate_streaming_request(auth_header, channel_id_header)

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return _FastConnectorFactory(self._inner.create_connector_factory(claims_identity), self, retries=False)

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        # CloudAdapter builds one per turn although the bot never uses OAuth prompts; one per app id suffices.
        app_id = JwtTokenValidation.get_app_id_from_claims(claims_identity.claims) or ""
        client = self._user_token_clients.get(app_id)
        if client is None:
            client = await self._inner.create_user_token_client(claims_identity)
            self._user_token_clients[app_id] = client
        return client

    def create_bot_framework_client(self):
        return self._inner.create_bot_framework_client()

    def get_originating_audience(self) -> str:
        return self._inner.get_originating_audience()

    async def authenticate_channel_request(self, auth_header: str) -> ClaimsIdentity:
        return await self._inner.authenticate_channel_request(auth_header)
