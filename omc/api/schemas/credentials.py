"""A credential to save or rotate (the values write-only), and a credential as answered:
masked (kind, name, hint, endpoint origin, times)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, SecretStr

KIND_HELP = (
    "`coinspot`, `ccxt` (with `provider`: the CCXT exchange id, e.g. `binance`) or `llm` "
    "(with `provider`, e.g. `openai`, `anthropic`, or any name plus `base_url` for an "
    "OpenAI-compatible server); `ccxt:binance` / `llm:openai` also work."
)


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr = Field(min_length=1, max_length=4096)
    api_secret: SecretStr | None = Field(
        default=None, min_length=1, max_length=8192, description="Exchanges need it."
    )
    base_url: str | None = Field(
        default=None,
        min_length=8,
        max_length=2048,
        description="Replace the provider's API origin (a proxy or a local model server).",
    )


class CredentialIn(KeyIn):
    kind: str = Field(min_length=1, max_length=80, description=KIND_HELP, examples=["coinspot"])
    provider: str | None = Field(default=None, min_length=1, max_length=48)
    name: str = Field(min_length=1, max_length=64, examples=["main"])


class CredentialOut(BaseModel):
    id: int
    kind: str = Field(description="`coinspot`, `ccxt:<exchange>` or `llm:<provider>`.")
    name: str
    hint: str = Field(description="The API key masked: `****` and its last 4 characters.")
    endpoint: str | None = Field(description="Origin of the credential's base_url, if any.")
    created_at: datetime
    rotated_at: datetime | None
    checked_at: datetime | None = Field(description="Last time the provider accepted the key.")
    last_used_at: datetime | None


class CredentialPage(BaseModel):
    items: list[CredentialOut]
    next_cursor: str | None


class CheckOut(BaseModel):
    ok: bool
    message: str = Field(description="`accepted`, or why the provider did not accept the key.")
    credential: CredentialOut
