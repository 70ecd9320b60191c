"""Access and refresh tokens: JWT signed with HS256 by a key derived from the secret.

Claims: `sub` (user id), `ver` (the user's `token_version` — bumping it revokes every token
issued before), `typ` (`access` or `refresh`), `iat`, `exp`, `jti`. A token of the wrong
type, expired, forged or of an older version is refused the same way (`InvalidToken`)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

import jwt

from omc.core.time import utcnow

ALGORITHM = "HS256"


class InvalidToken(Exception):
    """The token cannot be used (the reason is for logs, never the token)."""


@dataclass(frozen=True)
class Claims:
    user_id: int
    version: int
    kind: str


class TokenSigner:
    def __init__(self, key: bytes, access_ttl: timedelta, refresh_ttl: timedelta) -> None:
        self._key = key
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl

    def issue(self, user_id: int, version: int, kind: str) -> str:
        now = utcnow()
        ttl = self.access_ttl if kind == "access" else self.refresh_ttl
        claims = {
            "sub": str(user_id),
            "ver": version,
            "typ": kind,
            "iat": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
            "jti": secrets.token_urlsafe(12),
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def decode(self, token: str, kind: str) -> Claims:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                options={"require": ["sub", "ver", "typ", "exp"]},
            )
            if claims["typ"] != kind:
                raise InvalidToken(f"not an {kind} token")
            return Claims(int(claims["sub"]), int(claims["ver"]), kind)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            raise InvalidToken(type(exc).__name__) from None
