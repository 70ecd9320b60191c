"""Settings of the HTTP API (`OMC_*`): the secret key, token lifetimes, the login limiter,
TLS for a public bind, and the backtest worker threads."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    """What `omc serve` and `omc.api.app.create_app` read besides the core settings."""

    model_config = SettingsConfigDict(
        env_prefix="OMC_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    secret_key: SecretStr | None = Field(
        default=None,
        description="Secret that signs API tokens and encrypts stored credentials (at least "
        "32 characters). Unset: a random key in `<data_dir>/secret.key`, created with mode "
        "0600 by `omc init` or on first use.",
    )
    access_token_minutes: int = Field(
        default=15, ge=1, le=1440, description="Lifetime of an API access token (minutes)."
    )
    refresh_token_hours: int = Field(
        default=168, ge=1, le=8760, description="Lifetime of an API refresh token (hours)."
    )
    login_max_failures: int = Field(
        default=5, ge=1, description="Failed logins per user name in the window before 429."
    )
    login_max_failures_ip: int = Field(
        default=20, ge=1, description="Failed logins per client address in the window before 429."
    )
    login_window_s: float = Field(
        default=300.0, gt=0, description="Window of the login limiter (s)."
    )
    tls_certfile: Path | None = Field(
        default=None, description="TLS certificate (PEM) for `omc serve`; with `tls_keyfile`."
    )
    tls_keyfile: Path | None = Field(
        default=None, description="TLS private key (PEM) for `omc serve`."
    )
    api_workers: int = Field(
        default=2, ge=1, le=32, description="Threads running API backtest jobs."
    )

    paper_sessions: int = Field(
        default=8, ge=1, le=64, description="Paper sessions the server runs at once."
    )
    kill_wait_s: float = Field(
        default=10.0,
        ge=0,
        le=120,
        description="How long the kill switch route waits for a running session to confirm.",
    )

    stream_poll_s: float = Field(
        default=0.5, gt=0, le=60, description="How often /stream looks for changes (s)."
    )

    @property
    def tls(self) -> bool:
        return self.tls_certfile is not None and self.tls_keyfile is not None
