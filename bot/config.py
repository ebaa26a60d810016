"""Configuration from the environment, with Bot Framework's own variable names."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative")
    return value


def _consultants(env: Mapping[str, str]) -> frozenset[str]:
    """BOT_CONSULTANTS (comma-separated AAD object ids) plus <data dir>/consultants.txt (one per line, # comments)."""
    ids = {i.strip().lower() for i in env.get("BOT_CONSULTANTS", "").split(",") if i.strip()}
    path = Path(env.get("BOT_DATA_DIR", "data")) / "consultants.txt"
    if path.exists():
        ids |= {line.split("#")[0].strip().lower() for line in path.read_text(encoding="utf-8").splitlines()}
    return frozenset(i for i in ids if i)


@dataclass(frozen=True)
class Config:
    port: int = 3978
    host: str = "0.0.0.0"
    app_id: str = ""  # empty = local mode without authentication (Agents Playground, tests)
    app_password: str = ""
    app_type: str = "MultiTenant"
    app_tenant_id: str = ""
    data_dir: Path = Path("data")
    allowed_tenants: frozenset[str] = frozenset()  # empty = every tenant may use the bot
    nudge_interval_minutes: float = 15  # how often `serve` sweeps for due nudges; 0 = never (use the command)
    consultants: frozenset[str] = frozenset()  # AAD object ids of KOMBIT's consultants (cross-municipality view)
    public_url: str = ""  # how users reach this server (export download links); default http://localhost:PORT
    # Bot Framework's endpoints, normally left empty (public cloud). Set them to point authentication at
    # another cloud or, in tests, at a local OpenID/JWKS and token server. Names follow botbuilder's
    # parameterized authentication settings.
    openid_metadata_url: str = ""
    token_issuer: str = ""
    login_url: str = ""
    oauth_scope: str = ""

    @property
    def download_base(self) -> str:
        return self.public_url or f"http://localhost:{self.port}"

    @property
    def auth_enabled(self) -> bool:
        return bool(self.app_id)

    def check(self) -> Config:
        """Refuse settings botbuilder would reject later with a traceback naming its own attribute names."""
        if self.app_type.lower() == "singletenant":
            for name, value in (("MicrosoftAppId", self.app_id), ("MicrosoftAppPassword", self.app_password),
                                ("MicrosoftAppTenantId", self.app_tenant_id)):
                if not value:
                    raise ValueError(f"MicrosoftAppType=SingleTenant needs {name}")
        elif self.app_type.lower() not in ("multitenant", "userassignedmsi"):
            raise ValueError(f"MicrosoftAppType must be MultiTenant or SingleTenant, not {self.app_type!r}")
        if self.app_id and not self.app_password and self.app_type.lower() != "userassignedmsi":
            raise ValueError("MicrosoftAppId is set but MicrosoftAppPassword is empty")
        # Any one endpoint override switches botbuilder to parameterized authentication, where the unset
        # ones are None rather than public-cloud defaults: every token would then be refused.
        endpoints = {"BOT_OPENID_METADATA_URL": self.openid_metadata_url, "BOT_TOKEN_ISSUER": self.token_issuer,
                     "BOT_LOGIN_URL": self.login_url, "BOT_OAUTH_SCOPE": self.oauth_scope}
        if any(endpoints.values()) and not all(endpoints.values()):
            missing = ", ".join(k for k, v in endpoints.items() if not v)
            raise ValueError(f"set all Bot Framework endpoint overrides or none; missing {missing}")
        return self

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Config:
        port = env.get("PORT", "3978")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"PORT must be a port number, not {port!r}")
        return cls(
            port=int(port),
            host=env.get("HOST", "0.0.0.0"),
            app_id=env.get("MicrosoftAppId", ""),
            app_password=env.get("MicrosoftAppPassword", ""),
            app_type=env.get("MicrosoftAppType", "MultiTenant") or "MultiTenant",
            app_tenant_id=env.get("MicrosoftAppTenantId", ""),
            data_dir=Path(env.get("BOT_DATA_DIR", "data")),
            nudge_interval_minutes=_number(env, "BOT_NUDGE_INTERVAL_MINUTES", 15),
            consultants=_consultants(env),
            public_url=env.get("BOT_PUBLIC_URL", "").rstrip("/"),
            allowed_tenants=frozenset(t.strip().lower() for t in env.get("BOT_ALLOWED_TENANTS", "").split(",") if t.strip()),
            openid_metadata_url=env.get("BOT_OPENID_METADATA_URL", ""),
            token_issuer=env.get("BOT_TOKEN_ISSUER", ""),
            login_url=env.get("BOT_LOGIN_URL", ""),
            oauth_scope=env.get("BOT_OAUTH_SCOPE", ""),
        ).check()

    def botbuilder_settings(self) -> object:
        """The attribute names ConfigurationBotFrameworkAuthentication reads; endpoints only when set."""
        settings = {
            "APP_ID": self.app_id, "APP_PASSWORD": self.app_password,
            "APP_TYPE": self.app_type, "APP_TENANTID": self.app_tenant_id,
        }
        endpoints = {
            "TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL": self.openid_metadata_url,
            "TO_BOT_FROM_CHANNEL_TOKEN_ISSUER": self.token_issuer,
            "TO_CHANNEL_FROM_BOT_LOGIN_URL": self.login_url,
            "TO_CHANNEL_FROM_BOT_OAUTH_SCOPE": self.oauth_scope,
        }
        settings.update({k: v for k, v in endpoints.items() if v})
        return type("BotSettings", (), settings)()
