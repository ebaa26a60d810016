"""The channel's signing keys for inbound tokens, fetched with aiohttp, never on a request's critical path.

botbuilder 4.17 fetches the OpenID metadata and its JWKS with blocking `requests.get` and no timeout, inside the
event loop (`JwtTokenExtractor._OpenIdMetadata`): a key endpoint that hangs stalls every turn and /healthz. This
module takes the place of that one class (botbuilder looks it up per metadata URL through
`JwtTokenExtractor.get_open_id_metadata`), with the same `await get(kid)`; botbuilder still checks the token's
algorithm, signature, issuer, audience, expiry, endorsements and `serviceurl`.

- Fetches have connect and total timeouts, and run one at a time per URL (single flight): a hundred requests
  waiting for keys share one fetch.
- The keys are cached; after `REFRESH` they are refreshed in the background while the cached ones keep serving.
  A failed refresh keeps the old keys (stale is better than down) and is retried after `RETRY`.
- A token with a key id the cache does not have triggers at most one fetch per `UNKNOWN_KID_INTERVAL`; the
  request waits for it at most the fetch's own timeout.
- With nothing cached and the endpoint unreachable, `get` raises `KeysUnavailable` (the app answers 503).
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from botframework.connector.auth.jwt_token_extractor import JwtTokenExtractor
from jwt.algorithms import RSAAlgorithm

log = logging.getLogger(__name__)

REFRESH = 24 * 3600.0  # seconds: botbuilder's own interval
RETRY = 60.0  # after a failed fetch, the next attempt waits this long (the cached keys serve meanwhile)
RETRY_EMPTY = 5.0  # ... and with no keys at all, this long: requests meanwhile get 503 at once, not a fetch each
UNKNOWN_KID_INTERVAL = 300.0  # an unknown key id refetches at most this often: a rotation is seen in minutes
CONNECT_TIMEOUT = 3.0
TOTAL_TIMEOUT = 5.0  # a fetch of metadata and keys together; a request waiting for keys waits no longer


class KeysUnavailable(Exception):
    """No signing keys: never fetched, and the endpoint does not answer. The request cannot be judged (503)."""


@dataclass(frozen=True)
class SigningKey:
    """What botbuilder's `_OpenIdConfig` holds: the public key and the channels that endorse it."""

    public_key: Any
    endorsements: list[str]


@dataclass
class _State:
    keys: dict[str, dict] = field(default_factory=dict)  # kid -> JWK
    fetched_at: float = float("-inf")  # monotonic time of the last successful fetch
    failed_at: float = float("-inf")
    unknown_kid_at: float = float("-inf")  # when an unknown kid last caused a fetch


class SigningKeys:
    """One metadata URL's keys: `await get(kid)` as botbuilder's `_OpenIdMetadata.get`."""

    def __init__(self, url: str, clock: Callable[[], float] = time.monotonic, *,
                 connect_timeout: float = CONNECT_TIMEOUT, total_timeout: float = TOTAL_TIMEOUT):
        self.url = url
        self._clock = clock
        self._connect, self._total = connect_timeout, total_timeout
        self._state = _State()
        self._inflight: asyncio.Future | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.fetches = 0  # attempts, for tests and metrics
        self.on_fetch: Callable[[bool], None] | None = None  # told True/False per fetch (metrics)

    @property
    def cached(self) -> bool:
        return bool(self._state.keys)

    async def get(self, kid: str | None) -> SigningKey | None:
        state, now = self._state, self._clock()
        if not state.keys:
            if now - state.failed_at < RETRY_EMPTY and not self._fetching:
                raise KeysUnavailable(self.url)  # it just failed: no fetch per request while the endpoint is down
            await self._fetch_and_wait()
            if not state.keys:
                raise KeysUnavailable(self.url)
        elif now - state.fetched_at > REFRESH and now - state.failed_at > RETRY:
            self._start_fetch()  # in the background: this request is judged with the keys we have
        key = self._find(kid)
        if key is None and kid and (self._fetching or now - state.unknown_kid_at > UNKNOWN_KID_INTERVAL):
            # A new key id (a rotation): one fetch per interval, and every request with it waits for that fetch.
            if not self._fetching:
                state.unknown_kid_at = now
            await self._fetch_and_wait()
            key = self._find(kid)
        return key

    @property
    def _fetching(self) -> bool:
        return self._inflight is not None and not self._inflight.done() and self._loop is asyncio.get_running_loop()

    async def prefetch(self) -> None:
        """At start-up, so the first request does not wait and /readyz can say the keys are there."""
        if not self._state.keys:
            await self._fetch_and_wait()

    def ensure(self) -> None:
        """With no keys (start-up's fetch failed), start another fetch in the background, at most every
        RETRY_EMPTY: /readyz calls it, so an instance that nobody sends traffic to still becomes ready."""
        if not self._state.keys and not self._fetching and self._clock() - self._state.failed_at >= RETRY_EMPTY:
            self._start_fetch()

    def _find(self, kid: str | None) -> SigningKey | None:
        jwk = self._state.keys.get(kid or "")
        if jwk is None:
            return None
        return SigningKey(RSAAlgorithm.from_jwk(json.dumps(jwk)), list(jwk.get("endorsements") or []))

    def _start_fetch(self) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        if self._inflight is None or self._inflight.done() or self._loop is not loop:
            self._loop = loop
            self._inflight = loop.create_task(self._fetch())
        return self._inflight

    async def _fetch_and_wait(self) -> None:
        task = self._start_fetch()
        try:
            # shield: a request that stops waiting (its own timeout, a client gone) leaves the fetch to the others.
            # The fetch is two requests, each within the total timeout.
            await asyncio.wait_for(asyncio.shield(task), 2 * self._total + 1.0)
        except TimeoutError:
            log.warning("signing keys: still fetching, request not waiting longer", extra={"url": self.url})

    async def _fetch(self) -> None:
        self.fetches += 1
        timeout = aiohttp.ClientTimeout(total=self._total, connect=self._connect)
        try:
            # trust_env: HTTPS_PROXY/NO_PROXY as botbuilder's requests-based fetcher honoured them
            async with aiohttp.ClientSession(timeout=timeout, trust_env=True) as session:
                async with session.get(self.url) as response:
                    response.raise_for_status()
                    metadata = await response.json(content_type=None)
                async with session.get(metadata["jwks_uri"]) as response:
                    response.raise_for_status()
                    keys = (await response.json(content_type=None))["keys"]
            found = {k["kid"]: k for k in keys if isinstance(k, dict) and k.get("kid") and k.get("kty") == "RSA"}
            if not found:  # an empty or useless answer must not replace keys that work
                raise ValueError("no RSA keys in the JWKS")
            self._state.keys = found
            self._state.fetched_at = self._clock()
            ok = True
        except (TimeoutError, aiohttp.ClientError, ValueError, KeyError, TypeError) as exc:
            self._state.failed_at = self._clock()
            log.warning("signing keys: fetch failed; %s", "serving cached keys" if self._state.keys else "none cached",
                        extra={"url": self.url, "error": type(exc).__name__})
            ok = False
        if self.on_fetch is not None:
            self.on_fetch(ok)


class KeyRegistry:
    """Every metadata URL's keys in this process, handed to botbuilder in place of its blocking fetcher."""

    def __init__(self) -> None:
        self._by_url: dict[str, SigningKeys] = {}
        self.on_fetch: Callable[[bool], None] | None = None

    def __call__(self, url: str) -> SigningKeys:
        keys = self._by_url.get(url)
        if keys is None:
            keys = self._by_url[url] = SigningKeys(url, connect_timeout=CONNECT_TIMEOUT, total_timeout=TOTAL_TIMEOUT)
            keys.on_fetch = lambda ok: self.on_fetch(ok) if self.on_fetch else None
        return keys

    def all(self) -> list[SigningKeys]:
        return list(self._by_url.values())


REGISTRY = KeyRegistry()


def install(registry: KeyRegistry = REGISTRY) -> KeyRegistry:
    """Make botbuilder take its keys from `registry`. Idempotent; botbuilder's own cache is emptied so no
    extractor keeps the blocking fetcher it made before."""
    JwtTokenExtractor.get_open_id_metadata = staticmethod(registry)
    JwtTokenExtractor.metadataCache.clear()
    return registry
