"""Configuration from the environment, with Bot Framework's own variable names."""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dialogs.store import Store


def _cache_dir(env: Mapping[str, str]) -> Path | None:
    """BOT_CACHE_DIR; "off" keeps nothing; default $XDG_CACHE_HOME or ~/.cache, then kombit-assistant."""
    value = env.get("BOT_CACHE_DIR", "").strip()
    if value.lower() == "off":
        return None
    if value:
        return Path(value)
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "kombit-assistant"


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


_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# How the bot proves who it is. Azure creates no new multi-tenant bots since 31 July 2025: a new registration is
# SingleTenant (an app registration with a secret) or UserAssignedMSI (a managed identity: no secret at all).
APP_TYPES = {"singletenant": "SingleTenant", "userassignedmsi": "UserAssignedMSI", "multitenant": "MultiTenant"}
MULTITENANT_WARNING = ("MicrosoftAppType=MultiTenant: Azure no longer creates multi-tenant bots (since 2025-07-31); "
                       "an existing registration keeps working, a new one is SingleTenant or UserAssignedMSI")


@dataclass(frozen=True)
class Config:
    port: int = 3978
    host: str = "127.0.0.1"  # from_env: 0.0.0.0 with an identity; local mode stays on this machine
    app_id: str = ""  # empty = local mode without authentication (Agents Playground, tests)
    app_password: str = ""
    app_type: str = "SingleTenant"  # SingleTenant, UserAssignedMSI, or MultiTenant (older registrations)
    app_tenant_id: str = ""
    data_dir: Path = Path("data")
    # postgresql://…: the store in PostgreSQL (several instances, one bot); empty: the data dir (one process)
    database_url: str = ""
    # where the understander's training is kept between start-ups (speed only; None: train every start)
    cache_dir: Path | None = None
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
    allow_anonymous: bool = False  # BOT_ALLOW_ANONYMOUS=1: local mode on a public interface (behind your own gateway)
    app_type_explicit: bool = False  # MicrosoftAppType was set: an identity was meant, so its id must be there

    @property
    def download_base(self) -> str:
        return self.public_url or f"http://localhost:{self.port}"

    @property
    def auth_enabled(self) -> bool:
        return bool(self.app_id)

    @property
    def app_type_name(self) -> str:
        """The type as botbuilder spells it (the variable's case is free)."""
        return APP_TYPES.get(self.app_type.lower(), self.app_type)

    def check(self) -> Config:
        """Refuse, naming the variable, settings botbuilder would reject later with a traceback in its own terms
        (or accept and then fail at the first reply)."""
        kind = self.app_type.lower()
        if kind not in APP_TYPES:
            raise ValueError(f"MicrosoftAppType must be SingleTenant, UserAssignedMSI or MultiTenant, not {self.app_type!r}")
        if not self.app_id:  # local mode: no authentication, so nothing else may be half set
            for name, value in (("MicrosoftAppPassword", self.app_password), ("MicrosoftAppTenantId", self.app_tenant_id)):
                if value:
                    raise ValueError(f"{name} is set but MicrosoftAppId is empty (empty MicrosoftAppId = local mode)")
            if self.app_type_explicit:
                raise ValueError(f"MicrosoftAppType={self.app_type_name} is set but MicrosoftAppId is empty: without "
                                 "it the bot would run without authentication")
            if self.host not in ("127.0.0.1", "localhost", "::1") and not self.allow_anonymous:
                raise ValueError(f"MicrosoftAppId is empty (local mode, no authentication) and HOST={self.host} is not "
                                 "this machine: set MicrosoftAppId, or HOST=127.0.0.1, or BOT_ALLOW_ANONYMOUS=1 behind "
                                 "a gateway of your own")
        else:
            what = "the managed identity's client id" if kind == "userassignedmsi" else "the app registration's id"
            if not _GUID.match(self.app_id):
                raise ValueError(f"MicrosoftAppId must be {what} (a GUID), not {self.app_id!r}")
            if kind in ("singletenant", "userassignedmsi"):
                if not self.app_tenant_id:
                    raise ValueError(f"MicrosoftAppType={self.app_type_name} needs MicrosoftAppTenantId (the bot's tenant)")
                if not _GUID.match(self.app_tenant_id):
                    raise ValueError(f"MicrosoftAppTenantId must be the tenant's id (a GUID), not {self.app_tenant_id!r}")
            if kind == "userassignedmsi" and self.app_password:
                raise ValueError("MicrosoftAppType=UserAssignedMSI takes no MicrosoftAppPassword: the managed identity "
                                 "is the credential; leave it empty")
            if kind != "userassignedmsi" and not self.app_password:
                raise ValueError(f"MicrosoftAppType={self.app_type_name} needs MicrosoftAppPassword (the client secret)")
        if self.database_url and not self.database_url.startswith(("postgresql://", "postgres://")):
            raise ValueError("BOT_DATABASE_URL must be a postgresql:// URL (or empty for the data dir in BOT_DATA_DIR)")
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
        # Ids as pasted from the portal: stray whitespace or capitals would make every token's audience differ.
        app_id = env.get("MicrosoftAppId", "").strip().lower()
        return cls(
            port=int(port),
            host=env.get("HOST", "") or ("0.0.0.0" if app_id else "127.0.0.1"),
            app_id=app_id,
            app_password=env.get("MicrosoftAppPassword", ""),
            app_type=env.get("MicrosoftAppType", "").strip() or "SingleTenant",
            app_type_explicit=bool(env.get("MicrosoftAppType", "").strip()),
            app_tenant_id=env.get("MicrosoftAppTenantId", "").strip().lower(),
            allow_anonymous=env.get("BOT_ALLOW_ANONYMOUS", "") == "1",
            data_dir=Path(env.get("BOT_DATA_DIR", "data")),
            database_url=env.get("BOT_DATABASE_URL", "").strip(),
            cache_dir=_cache_dir(env),
            nudge_interval_minutes=_number(env, "BOT_NUDGE_INTERVAL_MINUTES", 15),
            consultants=_consultants(env),
            public_url=env.get("BOT_PUBLIC_URL", "").rstrip("/"),
            allowed_tenants=frozenset(t.strip().lower() for t in env.get("BOT_ALLOWED_TENANTS", "").split(",") if t.strip()),
            openid_metadata_url=env.get("BOT_OPENID_METADATA_URL", ""),
            token_issuer=env.get("BOT_TOKEN_ISSUER", ""),
            login_url=env.get("BOT_LOGIN_URL", ""),
            oauth_scope=env.get("BOT_OAUTH_SCOPE", ""),
        ).check()

    def open_store(self) -> Store:
        """The store this configuration names: PostgreSQL with BOT_DATABASE_URL, else the data dir."""
        if self.database_url:
            from bot.pg_store import PgStore  # asyncpg only where PostgreSQL is used
            pg: Store = PgStore(self.database_url)
            return pg
        from bot.store import TinyStore
        tiny: Store = TinyStore(self.data_dir)
        return tiny

    def botbuilder_settings(self) -> object:
        """The attribute names ConfigurationBotFrameworkAuthentication reads; endpoints only when set."""
        settings = {
            "APP_ID": self.app_id, "APP_PASSWORD": self.app_password,
            # Local mode (no app id) is botbuilder's MultiTenant without credentials: its "auth disabled" case.
            "APP_TYPE": self.app_type_name if self.app_id else "MultiTenant", "APP_TENANTID": self.app_tenant_id,
        }
        endpoints = {
            "TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL": self.openid_metadata_url,
            "TO_BOT_FROM_CHANNEL_TOKEN_ISSUER": self.token_issuer,
            "TO_CHANNEL_FROM_BOT_LOGIN_URL": self.login_url,
            "TO_CHANNEL_FROM_BOT_OAUTH_SCOPE": self.oauth_scope,
        }
        settings.update({k: v for k, v in endpoints.items() if v})
        return type("BotSettings", (), settings)()
