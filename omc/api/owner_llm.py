"""The Lab's LLM with the owner's own key: what a study the API runs for a user plans with.

`owner_settings(settings, engine, vault, user_id)` is the settings of that study's runtime:
the installation's settings, carrying as `.llm` (what `omc.lab.graph.planning.llm_settings`
reads) the `OMC_LLM_*` configuration with the API key — and the base URL, when the
credential names one — of the owner's newest stored `llm:<provider>` credential for the
configured provider (`omc.api.vault`, decrypted for the purpose `lab`, audited). A user
without such a credential gets the installation's `OMC_LLM_API_KEY`, if any; with no LLM
configured (`OMC_LLM_PROVIDER=none`) or a `local` model, nothing is looked up."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr
from sqlalchemy import Engine

from omc.api.auth.users import get as get_user
from omc.api.vault import Vault, kind_of, use_latest
from omc.core.config import Settings
from omc.lab.agents.settings import LlmSettings

NO_KEY = ("none", "local")


class OwnerSettings:
    """The installation's settings (every attribute) plus one user's LLM configuration."""

    def __init__(self, settings: Settings, llm: LlmSettings) -> None:
        self._settings = settings
        self.llm = llm

    def __getattr__(self, name: str) -> Any:
        return getattr(self._settings, name)


def owner_llm(
    engine: Engine, vault: Vault, user_id: int, base: LlmSettings | None = None
) -> LlmSettings:
    """`base` (default `OMC_LLM_*`) with the owner's stored key of its provider, if any."""
    base = base or LlmSettings()
    user = get_user(engine, user_id)
    if base.provider in NO_KEY or user is None or user.disabled:
        return base
    found = use_latest(engine, vault, user, kind_of("llm", base.provider), "lab")
    if found is None:
        return base
    material = found[1]
    update: dict[str, Any] = {"api_key": SecretStr(material.api_key)}
    if material.base_url:
        update["base_url"] = material.base_url.rstrip("/")
    return base.model_copy(update=update)


def owner_settings(settings: Settings, engine: Engine, vault: Vault, user_id: int) -> Any:
    return OwnerSettings(settings, owner_llm(engine, vault, user_id))
