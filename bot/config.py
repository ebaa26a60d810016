"""Configuration from the environment, with Bot Framework's own variable names."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Config:
    port: int = 3978
    host: str = "0.0.0.0"
    app_id: str = ""  # empty = local mode without authentication (Agents Playground, tests)
    app_password: str = ""
    app_type: str = "MultiTenant"
    app_tenant_id: str = ""
    data_dir: Path = Path("data")

    @property
    def auth_enabled(self) -> bool:
        return bool(self.app_id)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Config":
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
        )

    def botbuilder_settings(self) -> object:
        """The attribute names ConfigurationBotFrameworkAuthentication reads."""
        return type("BotSettings", (), {
            "APP_ID": self.app_id, "APP_PASSWORD": self.app_password,
            "APP_TYPE": self.app_type, "APP_TENANTID": self.app_tenant_id,
        })()
