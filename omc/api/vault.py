"""The credential vault: each user's exchange and LLM keys, encrypted at rest (Fernet).

The one read and write path of `api_credentials`, shared by the API routes, `omc trade live
--credential` and the Lab's LLM wiring (`llm_api_key_for`).

* The encryption key is derived from the installation's secret (`OMC_SECRET_KEY` or
  `<data_dir>/secret.key`, `omc.api.auth.secret`) for the purpose `"vault"`: the same secret
  as the API tokens, never the same key.
* What is encrypted: the whole key material (`Material`: API key, API secret, endpoint URL)
  as one Fernet token. What is kept in clear: kind, name, the masked hint of the API key
  (`****abcd`, `omc.core.masking.secret_hint`) and the times.
* Every action is audited in `api_audit` (never a value): `credential_saved`,
  `credential_refused` (the provider check failed: nothing stored), `credential_checked`,
  `credential_rotated`, `credential_deleted`, and `credential_used` with its purpose each
  time a key is decrypted to be used.
* A credential is reachable only by its owner: another user's id or name is "not found".
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError

from omc.api.auth.secret import derive, load_secret
from omc.api.auth.users import UserInfo, audit
from omc.api.auth.users import get as get_user
from omc.api.models import CREDENTIALS
from omc.api.settings import ApiSettings
from omc.core.config import Settings, get_settings
from omc.core.masking import register_secrets, secret_hint, url_origin
from omc.core.time import utcnow

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
PROVIDER = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,47}$")
FAMILIES = ("coinspot", "ccxt", "llm")


class VaultError(ValueError):
    """A user's mistake about a credential (one line, never a value)."""


class CredentialNotFound(VaultError):
    """No such credential of this user."""


class NameTaken(VaultError):
    """The user already has a credential of that name."""


class CheckFailed(VaultError):
    """The provider refused the key or could not be asked (the message names which)."""


class Undecryptable(VaultError):
    """The stored token does not open with this installation's key (the key changed)."""


@dataclass(frozen=True)
class Material:
    """The secret part of a credential. Its repr never shows a value."""

    api_key: str = field(repr=False)
    api_secret: str | None = field(default=None, repr=False)
    base_url: str | None = field(default=None, repr=False)

    def values(self) -> tuple[str, ...]:
        """The secret values (for redaction)."""
        return tuple(v for v in (self.api_key, self.api_secret) if v)


@dataclass(frozen=True)
class CredentialInfo:
    """A credential as anyone may see it: masked."""

    id: int
    owner_id: int
    kind: str
    name: str
    hint: str
    endpoint: str | None
    created_at: datetime
    rotated_at: datetime | None
    checked_at: datetime | None
    last_used_at: datetime | None


Checker = Callable[[str, Material], None]  # raises CheckFailed


def kind_of(family: str, provider: str | None = None) -> str:
    """The stored kind: `coinspot`, `ccxt:<exchange>` or `llm:<provider>` (also accepts the
    joined form `ccxt:binance` as `family`)."""
    if ":" in family and provider is None:
        family, provider = family.split(":", 1)
    if family not in FAMILIES:
        raise VaultError(f"kind: one of {', '.join(FAMILIES)}")
    if family == "coinspot":
        if provider not in (None, "", "coinspot"):
            raise VaultError("kind coinspot takes no provider")
        return "coinspot"
    if not provider or not PROVIDER.match(provider.lower()):
        what = "exchange id (e.g. binance)" if family == "ccxt" else "provider (e.g. openai)"
        raise VaultError(f"kind {family} needs a {what}: lower-case letters and digits")
    return f"{family}:{provider.lower()}"


def validate(kind: str, name: str, material: Material) -> None:
    if not NAME.match(name):
        raise VaultError("name: 1-64 letters, digits or . _ @ - (starting with a letter or digit)")
    if not material.api_key.strip():
        raise VaultError("api_key: empty")
    if not kind.startswith("llm:") and not (material.api_secret or "").strip():
        raise VaultError(f"api_secret: {kind} needs the API secret too")
    if material.base_url is not None and not material.base_url.startswith(("http://", "https://")):
        raise VaultError("base_url: an http:// or https:// URL")


class Vault:
    """Encrypts and decrypts key material with the installation's vault key."""

    def __init__(self, secret: bytes) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(derive(secret, "vault")))

    def __repr__(self) -> str:
        return "Vault(<key hidden>)"

    @classmethod
    def from_settings(cls, settings: Settings, api: ApiSettings | None = None) -> Vault:
        """The vault of this installation (`OMC_SECRET_KEY` or the key file)."""
        api = api or ApiSettings()
        return cls(load_secret(api.secret_key, settings.data_dir))

    def seal(self, material: Material) -> str:
        raw = {"api_key": material.api_key, "api_secret": material.api_secret}
        if material.base_url:
            raw["base_url"] = material.base_url
        return self._fernet.encrypt(json.dumps(raw).encode()).decode()

    def open(self, token: str, name: str) -> Material:
        try:
            raw = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise Undecryptable(
                f"credential {name!r} cannot be decrypted with this installation's secret key "
                "(was OMC_SECRET_KEY or secret.key changed?)"
            ) from None
        return Material(raw["api_key"], raw.get("api_secret"), raw.get("base_url"))


def _info(row: Any, endpoint: str | None) -> CredentialInfo:
    return CredentialInfo(
        row.id,
        row.owner_id,
        row.kind,
        row.name,
        row.hint,
        endpoint,
        row.created_at,
        row.rotated_at,
        row.checked_at,
        row.last_used_at,
    )


def _endpoint(material: Material) -> str | None:
    return url_origin(material.base_url) if material.base_url else None


def _row(engine: Engine, owner_id: int, ref: int | str) -> Any:
    t = CREDENTIALS
    where = t.c.id == ref if isinstance(ref, int) else t.c.name == ref
    with engine.connect() as conn:
        row = conn.execute(select(t).where(where, t.c.owner_id == owner_id)).first()
    if row is None:
        raise CredentialNotFound(
            f"no credential {ref!r}" if isinstance(ref, str) else "no such credential"
        )
    return row


def _audit(
    engine: Engine, action: str, user: UserInfo, row: Any, ip: str | None, **extra: Any
) -> None:
    detail = {"credential": row.id, "name": row.name, "kind": row.kind, **extra}
    audit(engine, action, user.name, user_id=user.id, ip=ip, detail=detail)


def listing(
    engine: Engine, vault: Vault, owner_id: int, *, limit: int = 1000, after: str | None = None
) -> tuple[list[CredentialInfo], bool]:
    """A page of the user's credentials, masked, by name (names after `after`), and whether
    more follow. The endpoint's origin is shown: decrypted here only for that."""
    t = CREDENTIALS
    query = select(t).where(t.c.owner_id == owner_id)
    if after is not None:
        query = query.where(t.c.name > after)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(t.c.name).limit(limit + 1)).all()
    items = [_info(r, _endpoint(_safe_open(vault, r))) for r in rows[:limit]]
    return items, len(rows) > limit


def _safe_open(vault: Vault, row: Any) -> Material:
    try:
        return vault.open(row.ciphertext, row.name)
    except Undecryptable:
        return Material("")


def get(engine: Engine, vault: Vault, owner_id: int, ref: int | str) -> CredentialInfo:
    row = _row(engine, owner_id, ref)
    return _info(row, _endpoint(_safe_open(vault, row)))


def save(
    engine: Engine,
    vault: Vault,
    user: UserInfo,
    kind: str,
    name: str,
    material: Material,
    *,
    check: Checker,
    ip: str | None = None,
) -> CredentialInfo:
    """Check the key against its provider, then store it encrypted. A refused check stores
    nothing (audited as `credential_refused`) and raises `CheckFailed`."""
    validate(kind, name, material)
    t = CREDENTIALS
    with engine.connect() as conn:
        taken = conn.execute(
            select(t.c.id).where(t.c.owner_id == user.id, t.c.name == name)
        ).first()
    if taken is not None:
        raise NameTaken(f"you have a credential named {name!r} already")
    try:
        check(kind, material)
    except CheckFailed:
        detail = {"name": name, "kind": kind}
        audit(engine, "credential_refused", user.name, user_id=user.id, ip=ip, detail=detail)
        raise
    now = utcnow()
    try:
        with engine.begin() as conn:
            new_id = conn.execute(
                t.insert()
                .values(
                    owner_id=user.id,
                    kind=kind,
                    name=name,
                    ciphertext=vault.seal(material),
                    hint=secret_hint(material.api_key),
                    created_at=now,
                    checked_at=now,
                )
                .returning(t.c.id)
            ).scalar_one()
    except IntegrityError:
        raise NameTaken(f"you have a credential named {name!r} already") from None
    row = _row(engine, user.id, new_id)
    _audit(engine, "credential_saved", user, row, ip)
    return _info(row, _endpoint(material))


def recheck(
    engine: Engine, vault: Vault, user: UserInfo, ref: int | str, *, check: Checker,
    ip: str | None = None,
) -> tuple[CredentialInfo, str | None]:  # fmt: skip
    """Check the stored key against its provider again: the credential and, when the check
    failed, why (one line)."""
    row = _row(engine, user.id, ref)
    material = vault.open(row.ciphertext, row.name)
    problem = None
    try:
        check(row.kind, material)
    except CheckFailed as exc:
        problem = str(exc)
    else:
        with engine.begin() as conn:
            conn.execute(
                update(CREDENTIALS).where(CREDENTIALS.c.id == row.id).values(checked_at=utcnow())
            )
    _audit(engine, "credential_checked", user, row, ip, ok=problem is None)
    return get(engine, vault, user.id, row.id), problem


def rotate(
    engine: Engine,
    vault: Vault,
    user: UserInfo,
    ref: int | str,
    material: Material,
    *,
    check: Checker,
    ip: str | None = None,
) -> CredentialInfo:
    """Replace the stored key with a new one (checked first; refused: the old one stays).
    An unset `base_url` keeps the stored endpoint."""
    row = _row(engine, user.id, ref)
    if material.base_url is None:
        old = vault.open(row.ciphertext, row.name)
        material = Material(material.api_key, material.api_secret, old.base_url)
    validate(row.kind, row.name, material)
    try:
        check(row.kind, material)
    except CheckFailed:
        _audit(engine, "credential_refused", user, row, ip, rotation=True)
        raise
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            update(CREDENTIALS)
            .where(CREDENTIALS.c.id == row.id)
            .values(
                ciphertext=vault.seal(material),
                hint=secret_hint(material.api_key),
                rotated_at=now,
                checked_at=now,
            )
        )
    _audit(engine, "credential_rotated", user, row, ip)
    return get(engine, vault, user.id, row.id)


def remove(engine: Engine, user: UserInfo, ref: int | str, *, ip: str | None = None) -> None:
    row = _row(engine, user.id, ref)
    with engine.begin() as conn:
        conn.execute(delete(CREDENTIALS).where(CREDENTIALS.c.id == row.id))
    _audit(engine, "credential_deleted", user, row, ip)


def use(
    engine: Engine, vault: Vault, user: UserInfo, ref: int | str, purpose: str
) -> tuple[CredentialInfo, Material]:
    """Decrypt a credential to use it now (audited as `credential_used` with `purpose`)."""
    row = _row(engine, user.id, ref)
    material = vault.open(row.ciphertext, row.name)
    register_secrets(*material.values())  # masked in every URL-printing and JSON log line
    with engine.begin() as conn:
        conn.execute(
            update(CREDENTIALS).where(CREDENTIALS.c.id == row.id).values(last_used_at=utcnow())
        )
    _audit(engine, "credential_used", user, row, None, purpose=purpose[:64])
    return _info(row, _endpoint(material)), material


def use_latest(
    engine: Engine, vault: Vault, user: UserInfo, kind: str, purpose: str
) -> tuple[CredentialInfo, Material] | None:
    """The user's most recently saved or rotated credential of `kind`, decrypted for use."""
    t = CREDENTIALS
    with engine.connect() as conn:
        rows = conn.execute(select(t).where(t.c.owner_id == user.id, t.c.kind == kind)).all()
    if not rows:
        return None
    latest = max(rows, key=lambda r: (r.rotated_at or r.created_at, r.id))
    return use(engine, vault, user, int(latest.id), purpose)


def llm_api_key_for(
    engine: Engine, user_id: int, provider: str, *, vault: Vault | None = None,
    settings: Settings | None = None,
) -> str | None:  # fmt: skip
    """The API key of the user's stored `llm:<provider>` credential (the newest), or None.
    For the Lab's LLM wiring; audited as used for `lab`."""
    user = get_user(engine, user_id)
    if user is None or user.disabled:
        return None
    vault = vault or Vault.from_settings(settings or get_settings())
    found = use_latest(engine, vault, user, kind_of("llm", provider), "lab")
    return None if found is None else found[1].api_key
