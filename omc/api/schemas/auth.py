"""Login, tokens, the cookie session and the current user."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class Refresh(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=4096)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds the access token lives.")


class Session(BaseModel):
    username: str
    csrf_token: str = Field(
        description="Send it back as the X-CSRF-Token header on every cookie-authenticated "
        "write (it is also in the omc_csrf cookie)."
    )
    expires_in: int


class Me(BaseModel):
    id: int
    username: str
    is_admin: bool
