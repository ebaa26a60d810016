"""bot/signing_keys.py against a local key endpoint: one fetch for many waiting requests, at most one refetch per
interval for unknown key ids (and those waiting for it get the new key), stale keys served while a background
refresh runs or fails, an empty JWKS never replacing keys that work, and no fetch per request while there are none."""
from __future__ import annotations

import asyncio

import pytest

from bot import signing_keys
from bot.signing_keys import KeysUnavailable, SigningKeys
from tests.auth_servers import new_rsa_key
from tests.e2e.test_ops import KeyEndpoint


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def endpoint():
    server = KeyEndpoint()
    await server.start()
    yield server
    await server.runner.cleanup()


def keys_for(endpoint: KeyEndpoint, clock: Clock | None = None) -> SigningKeys:
    return SigningKeys(endpoint.metadata_url, clock or Clock(), connect_timeout=0.5, total_timeout=0.8)


async def test_many_requests_waiting_for_keys_share_one_fetch(endpoint):
    endpoint.delay = 0.2
    keys = keys_for(endpoint)
    found = await asyncio.gather(*(keys.get("test-key") for _ in range(50)))
    assert all(k is not None for k in found)
    assert keys.fetches == 1 and endpoint.requests == 2  # metadata and JWKS, once


async def test_unknown_key_ids_refetch_at_most_once_per_interval(endpoint):
    clock = Clock()
    keys = keys_for(endpoint, clock)
    await keys.get("test-key")
    assert await keys.get("forged-1") is None and keys.fetches == 2
    assert await keys.get("forged-2") is None and keys.fetches == 2  # within the interval: no fetch
    clock.now += signing_keys.UNKNOWN_KID_INTERVAL + 1
    assert await keys.get("forged-3") is None and keys.fetches == 3


async def test_after_a_rotation_every_request_with_the_new_key_id_waits_for_the_one_fetch(endpoint):
    keys = keys_for(endpoint)
    await keys.get("test-key")
    endpoint.key, endpoint.kid, endpoint.delay = new_rsa_key(), "rotated", 0.2
    found = await asyncio.gather(*(keys.get("rotated") for _ in range(5)))
    assert all(k is not None for k in found) and keys.fetches == 2


async def test_stale_keys_serve_at_once_while_the_refresh_hangs(endpoint):
    clock = Clock()
    keys = keys_for(endpoint, clock)
    await keys.get("test-key")
    endpoint.mode = "hang"
    clock.now += signing_keys.REFRESH + 1
    key = await asyncio.wait_for(keys.get("test-key"), 0.1)  # judged with the cached key, not after the fetch
    assert key is not None and keys.fetches == 2  # the refresh started in the background
    await asyncio.wait_for(keys.get("test-key"), 0.1)
    assert keys.fetches == 2  # one refresh at a time


async def test_an_empty_key_set_does_not_replace_keys_that_work(endpoint):
    clock = Clock()
    keys = keys_for(endpoint, clock)
    await keys.get("test-key")
    endpoint.mode = "empty"
    clock.now += signing_keys.UNKNOWN_KID_INTERVAL + 1
    assert await keys.get("unknown") is None and keys.fetches == 2
    assert await keys.get("test-key") is not None


async def test_with_no_keys_a_down_endpoint_is_not_asked_once_per_request(endpoint):
    clock = Clock()
    endpoint.mode = "fail"
    keys = keys_for(endpoint, clock)
    for _ in range(5):
        with pytest.raises(KeysUnavailable):
            await keys.get("test-key")
    assert keys.fetches == 1
    clock.now += signing_keys.RETRY_EMPTY + 0.1
    endpoint.mode = "ok"
    assert await keys.get("test-key") is not None and keys.fetches == 2


async def test_readiness_fetches_again_when_start_ups_fetch_failed(endpoint):
    clock = Clock()
    endpoint.mode = "fail"
    keys = keys_for(endpoint, clock)
    await keys.prefetch()
    assert not keys.cached
    endpoint.mode = "ok"
    keys.ensure()  # within RETRY_EMPTY: not yet
    await asyncio.sleep(0.05)
    assert keys.fetches == 1
    clock.now += signing_keys.RETRY_EMPTY
    keys.ensure()
    for _ in range(50):
        if keys.cached:
            break
        await asyncio.sleep(0.02)
    assert keys.cached and keys.fetches == 2
