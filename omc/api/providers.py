"""What each kind of stored credential talks to: the check when it is saved, and the live
venue it opens.

* `check(kind, material, settings)` asks the provider once, read-only: CoinSpot's
  `/ro/my/balances`, a CCXT exchange's `fetch_balance`, an LLM provider's `GET /models`
  (OpenAI and OpenAI-compatible: `Authorization: Bearer`; Anthropic: `x-api-key`; Google:
  `x-goog-api-key`). A refusal or an
  unreachable provider raises `CheckFailed` with one line that never holds a value (every
  message goes through `omc.core.masking.Redactor` with the key and secret).
* `live_venue(kind, material, settings)` builds the Floor's venue (`CoinSpotVenue`,
  `CcxtVenue`) with the stored key, for `omc trade live --credential` and the API.

A credential's `base_url` replaces the provider's API origin (a proxy, a local model server,
the test fakes). The LLM check sends to that origin only: a redirect elsewhere is refused
before the key goes out (httpx drops `Authorization` on one, not `x-api-key`)."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr

from omc.api.vault import CheckFailed, Material, VaultError
from omc.core.config import Settings
from omc.core.http import HttpClient, HttpError, RetryPolicy
from omc.core.masking import Redactor, register_secrets

LLM_ENDPOINTS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com/v1",
    "google": "https://generativelanguage.googleapis.com/v1beta",
    "openrouter": "https://openrouter.ai/api/v1",
}
ANTHROPIC_VERSION = "2023-06-01"


def _settings_for(kind: str, material: Material, settings: Settings) -> Settings:
    if not material.base_url:
        return settings
    field = "coinspot_base_url" if kind == "coinspot" else "ccxt_base_url"
    return settings.model_copy(update={field: material.base_url})


def live_venue(kind: str, material: Material, settings: Settings) -> Any:
    """The Floor venue of a `coinspot` or `ccxt:<exchange>` credential."""
    key, secret = SecretStr(material.api_key), SecretStr(material.api_secret or "")
    settings = _settings_for(kind, material, settings)
    if kind == "coinspot":
        from omc.floor.venues.coinspot import CoinSpotVenue
        from omc.floor.venues.coinspot_signing import CoinSpotCredentials

        return CoinSpotVenue.from_settings(
            settings, CoinSpotCredentials(api_key=key, api_secret=secret)
        )
    if kind.startswith("ccxt:"):
        from omc.floor.venues.ccxt_venue import CcxtCredentials, CcxtVenue
        from omc.ledgers.exchange.backfill import BackfillInputError

        try:
            return CcxtVenue.from_settings(
                kind.split(":", 1)[1], settings, CcxtCredentials(api_key=key, api_secret=secret)
            )
        except BackfillInputError as exc:
            raise VaultError(str(exc)) from None
    raise VaultError(f"a {kind} credential is not an exchange key")


def _coinspot(material: Material, settings: Settings) -> None:
    from omc.floor.venues.coinspot_client import CoinSpotPrivateClient
    from omc.floor.venues.coinspot_models import CoinSpotAuthError
    from omc.floor.venues.coinspot_signing import CoinSpotCredentials, NonceSource

    key = SecretStr(material.api_key)
    client = CoinSpotPrivateClient(
        key,
        material.api_secret or "",
        base_url=material.base_url or settings.coinspot_base_url,
        nonces=NonceSource.for_key(key, CoinSpotCredentials().nonce_store()),
        timeout_s=settings.http_timeout_s,
        retry=RetryPolicy(max_retries=1),
        rate_per_s=None,
    )
    try:
        client.balances()
    except CoinSpotAuthError as exc:
        raise CheckFailed(
            f"coinspot refused the key: {exc.api_message or 'not authorised'}"
        ) from None
    except HttpError as exc:
        raise CheckFailed(f"coinspot could not be asked: {_reason(exc)}") from None
    finally:
        client.close()


def _ccxt(kind: str, material: Material, settings: Settings) -> None:
    from omc.floor.venues.base import VenueError, VenueUnavailable

    venue = live_venue(kind, material, settings)
    try:
        venue.balances()
    except VenueUnavailable:
        raise CheckFailed(f"{kind} could not be reached") from None
    except VenueError as exc:
        cause = type(exc.__cause__).__name__ if exc.__cause__ else "refused"
        raise CheckFailed(f"{kind} refused the key ({cause})") from None
    except Exception as exc:  # ccxt raises its own errors for anything else (a bad answer)
        raise CheckFailed(f"{kind} could not be asked ({type(exc).__name__})") from None


def _llm(kind: str, material: Material, settings: Settings) -> None:
    provider = kind.split(":", 1)[1]
    base = material.base_url or LLM_ENDPOINTS.get(provider)
    if base is None:
        raise VaultError(
            f"base_url: provider {provider!r} needs the URL of its OpenAI-compatible API "
            f"(known without one: {', '.join(LLM_ENDPOINTS)})"
        )
    if provider == "anthropic":
        headers = {"x-api-key": material.api_key, "anthropic-version": ANTHROPIC_VERSION}
    elif provider == "google":
        headers = {"x-goog-api-key": material.api_key}
    else:
        headers = {"Authorization": f"Bearer {material.api_key}"}
    from omc.floor.venues.coinspot_signing import SameOriginTransport

    with HttpClient(
        base,
        source=kind,
        timeout_s=settings.http_timeout_s,
        retry=RetryPolicy(max_retries=1),
        transport=SameOriginTransport(httpx.HTTPTransport(), base),
    ) as http:
        try:
            http.get("/models", headers=headers)
        except HttpError as exc:
            if exc.status in (401, 403):
                raise CheckFailed(f"{kind} refused the key (HTTP {exc.status})") from None
            raise CheckFailed(f"{kind} could not be asked: {_reason(exc)}") from None


def _reason(exc: HttpError) -> str:
    return f"HTTP {exc.status}" if exc.status else str(exc).split(": ", 1)[-1]


def check(kind: str, material: Material, settings: Settings) -> None:
    """Ask the provider whether it accepts the key (see the module docstring)."""
    redact = Redactor(*material.values())
    try:
        if kind == "coinspot":
            _coinspot(material, settings)
        elif kind.startswith("ccxt:"):
            _ccxt(kind, material, settings)
        elif kind.startswith("llm:"):
            _llm(kind, material, settings)
        else:
            raise VaultError(f"unknown kind {kind!r}")
    except CheckFailed as exc:
        raise CheckFailed(redact.text(str(exc), 300)) from None
    register_secrets(*material.values())  # an accepted key: masked in every log from now on
