"""How the bot proves who it is (issue 16): SingleTenant is the default, UserAssignedMSI takes a managed identity
and no secret, MultiTenant still works with a warning; every misconfiguration is refused at start-up naming the
variable. UserAssignedMSI is run end to end: MSAL's ManagedIdentityClient gets its token from a local stand-in of
App Service's identity endpoint (IDENTITY_ENDPOINT/IDENTITY_HEADER), and the bot's reply carries it.

Not testable here: the real IMDS or App Service endpoint and Entra's validation of the token (the stand-in
issues an opaque string), and Azure's refusal to create new MultiTenant bots."""
from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.config import MULTITENANT_WARNING, Config
from tests.e2e.test_auth import APP_ID, APP_PASSWORD, APP_TENANT, AuthBotServer, identity, no_way_out, start_bot  # noqa: F401 - fixtures
from tests.harness import personal

HEADER_SECRET = "local-identity-header"


class IdentityEndpoint:
    """App Service's managed identity endpoint as MSAL calls it: GET ?api-version&resource&client_id with the
    X-IDENTITY-HEADER secret; answers a token, and records what it was asked."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.issued: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                owner.requests.append({"query": query, "header": self.headers.get("X-IDENTITY-HEADER")})
                if self.headers.get("X-IDENTITY-HEADER") != HEADER_SECRET:
                    self._answer(401, {"error": "bad header"})
                    return
                token = f"msi-token-{len(owner.issued) + 1}"
                owner.issued.append(token)
                self._answer(200, {"access_token": token, "expires_on": str(int(time.time()) + 3600),
                                   "resource": query.get("resource"), "token_type": "Bearer"})

            def _answer(self, status: int, body: dict) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/msi/token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> IdentityEndpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- start-up: the type and what it needs --------------------------------------------------------------------
def test_single_tenant_is_the_default():
    assert Config.from_env({}).app_type_name == "SingleTenant"
    config = Config.from_env({"MicrosoftAppId": APP_ID, "MicrosoftAppPassword": "s", "MicrosoftAppTenantId": APP_TENANT})
    assert config.app_type_name == "SingleTenant" and config.botbuilder_settings().APP_TYPE == "SingleTenant"


def test_local_mode_needs_nothing_and_is_botbuilders_auth_disabled_case():
    config = Config.from_env({})
    assert not config.auth_enabled and config.botbuilder_settings().APP_TYPE == "MultiTenant"


@pytest.mark.parametrize("env, variable", [
    ({"MicrosoftAppId": APP_ID, "MicrosoftAppPassword": "s"}, "MicrosoftAppTenantId"),
    ({"MicrosoftAppId": APP_ID, "MicrosoftAppTenantId": APP_TENANT}, "MicrosoftAppPassword"),
    ({"MicrosoftAppId": "my-bot", "MicrosoftAppPassword": "s", "MicrosoftAppTenantId": APP_TENANT}, "MicrosoftAppId"),
    ({"MicrosoftAppId": APP_ID, "MicrosoftAppPassword": "s", "MicrosoftAppTenantId": "contoso"}, "MicrosoftAppTenantId"),
    ({"MicrosoftAppType": "UserAssignedMSI", "MicrosoftAppId": APP_ID}, "MicrosoftAppTenantId"),
    ({"MicrosoftAppType": "UserAssignedMSI", "MicrosoftAppId": APP_ID, "MicrosoftAppTenantId": APP_TENANT,
      "MicrosoftAppPassword": "s"}, "MicrosoftAppPassword"),
    ({"MicrosoftAppType": "MultiTenant", "MicrosoftAppId": APP_ID}, "MicrosoftAppPassword"),
    ({"MicrosoftAppType": "Federated", "MicrosoftAppId": APP_ID}, "MicrosoftAppType"),
    ({"MicrosoftAppPassword": "s"}, "MicrosoftAppPassword"),
], ids=["single-no-tenant", "single-no-secret", "id-not-guid", "tenant-not-guid", "msi-no-tenant", "msi-with-secret",
        "multi-no-secret", "unknown-type", "secret-without-id"])
def test_a_misconfiguration_is_refused_naming_the_variable(env, variable):
    with pytest.raises(ValueError) as refused:
        Config.from_env(env)
    assert variable in str(refused.value)


def test_user_assigned_msi_takes_the_identity_and_no_secret():
    config = Config.from_env({"MicrosoftAppType": "userassignedmsi", "MicrosoftAppId": APP_ID,
                              "MicrosoftAppTenantId": APP_TENANT})
    settings = config.botbuilder_settings()
    assert (settings.APP_TYPE, settings.APP_ID, settings.APP_PASSWORD, settings.APP_TENANTID) == \
        ("UserAssignedMSI", APP_ID, "", APP_TENANT)


# -- end to end -------------------------------------------------------------------------------------------------
async def test_user_assigned_msi_replies_with_the_managed_identitys_token(start_bot, identity, monkeypatch):
    with IdentityEndpoint() as endpoint:
        monkeypatch.setenv("IDENTITY_ENDPOINT", endpoint.url)  # how App Service tells MSAL where its identity is
        monkeypatch.setenv("IDENTITY_HEADER", HEADER_SECRET)
        bot = await start_bot(app_type="UserAssignedMSI", app_password="", app_tenant_id=APP_TENANT)
        secrets_asked = len(identity.token_requests())
        token = identity.channel_token(bot.connector.url)
        status = await bot.post_with(bot.message("tilmeld Aarhus", personal()), f"Bearer {token}")
        assert 200 <= status < 300
        assert len(bot.connector.sent) == 1 and "Aarhus Kommune" in bot.connector.sent[0]["text"]
        assert bot.connector.authorizations == [f"Bearer {endpoint.issued[0]}"]
        (asked,) = endpoint.requests
        assert asked["header"] == HEADER_SECRET
        assert asked["query"]["client_id"] == APP_ID  # the user-assigned identity, by its client id
        assert asked["query"]["resource"].startswith("https://api.botframework.com")
        assert len(identity.token_requests()) == secrets_asked  # no client-secret flow at the login authority


async def test_multi_tenant_still_works_and_warns_at_start_up(start_bot, caplog):
    with caplog.at_level(logging.WARNING, logger="bot.app"):
        await start_bot(app_type="MultiTenant", app_password=APP_PASSWORD)
    assert any(r.getMessage() == MULTITENANT_WARNING for r in caplog.records)


async def test_single_tenant_does_not_warn(start_bot, caplog):
    with caplog.at_level(logging.WARNING, logger="bot.app"):
        await start_bot(app_type="SingleTenant", app_tenant_id=APP_TENANT)
    assert not any(r.getMessage() == MULTITENANT_WARNING for r in caplog.records)


@pytest.mark.parametrize("env, variable", [
    ({"MicrosoftAppType": "UserAssignedMSI"}, "MicrosoftAppId"),  # an identity was meant: never silently none
    ({"HOST": "0.0.0.0"}, "HOST"),  # no authentication on a public interface
])
def test_authentication_never_turns_itself_off(env, variable):
    with pytest.raises(ValueError) as refused:
        Config.from_env(env)
    assert variable in str(refused.value)


def test_local_mode_stays_on_this_machine_unless_asked():
    assert Config.from_env({}).host == "127.0.0.1"
    assert Config.from_env({"HOST": "0.0.0.0", "BOT_ALLOW_ANONYMOUS": "1"}).host == "0.0.0.0"
    with_identity = {"MicrosoftAppId": APP_ID, "MicrosoftAppPassword": "s", "MicrosoftAppTenantId": APP_TENANT}
    assert Config.from_env(with_identity).host == "0.0.0.0"


def test_ids_as_pasted_from_the_portal_are_normalised():
    config = Config.from_env({"MicrosoftAppId": f" {APP_ID.upper()}\n", "MicrosoftAppPassword": "s",
                              "MicrosoftAppTenantId": f"{APP_TENANT.upper()} "})
    assert (config.app_id, config.app_tenant_id) == (APP_ID, APP_TENANT)
