"""Settings of the Lab's LLM agents (`OMC_LLM_*`): which provider and model, the key, the
session budgets, the per-model price and training-cutoff tables, masking and the fallback.

`provider` `none` (the default) means no LLM: the deterministic planner plans every study.
The key is a `SecretStr`; nothing here prints it (`omc config` shows `***`).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Provider = Literal["none", "openai", "anthropic", "google", "openai-compatible", "local"]
PROVIDERS: tuple[str, ...] = ("none", "openai", "anthropic", "google", "openai-compatible", "local")

# USD per 1M tokens (input, output): the vendors' published list prices (December 2026
# defaults; set OMC_LLM_PRICES to yours). A model matches the longest key it starts with.
DEFAULT_PRICES: dict[str, list[float]] = {
    "gpt-4o-mini": [0.15, 0.60],
    "gpt-4o": [2.50, 10.00],
    "gpt-4.1-nano": [0.10, 0.40],
    "gpt-4.1-mini": [0.40, 1.60],
    "gpt-4.1": [2.00, 8.00],
    "gpt-5-nano": [0.05, 0.40],
    "gpt-5-mini": [0.25, 2.00],
    "gpt-5": [1.25, 10.00],
    "o4-mini": [1.10, 4.40],
    "o3": [2.00, 8.00],
    "claude-3-5-haiku": [0.80, 4.00],
    "claude-3-5-sonnet": [3.00, 15.00],
    "claude-3-7-sonnet": [3.00, 15.00],
    "claude-sonnet-4": [3.00, 15.00],
    "claude-opus-4": [15.00, 75.00],
    "claude-haiku-4": [1.00, 5.00],
    "gemini-1.5-flash": [0.075, 0.30],
    "gemini-1.5-pro": [1.25, 5.00],
    "gemini-2.0-flash": [0.10, 0.40],
    "gemini-2.5-flash": [0.30, 2.50],
    "gemini-2.5-pro": [1.25, 10.00],
}
# Training-data cutoffs the vendors state (a model may remember what happened before it).
DEFAULT_CUTOFFS: dict[str, str] = {
    "gpt-4o-mini": "2023-10-01",
    "gpt-4o": "2023-10-01",
    "gpt-4.1": "2024-06-01",
    "gpt-5": "2024-10-01",
    "o4-mini": "2024-06-01",
    "o3": "2024-06-01",
    "claude-3-5-haiku": "2024-07-01",
    "claude-3-5-sonnet": "2024-04-01",
    "claude-3-7-sonnet": "2024-11-01",
    "claude-sonnet-4": "2025-03-01",
    "claude-opus-4": "2025-03-01",
    "claude-haiku-4": "2025-02-01",
    "gemini-1.5": "2023-11-01",
    "gemini-2.0-flash": "2024-08-01",
    "gemini-2.5": "2025-01-01",
    "llama3.1": "2023-12-01",
    "llama-3.1": "2023-12-01",
    "llama3.2": "2023-12-01",
    "llama3.3": "2023-12-01",
    "qwen2.5": "2024-09-01",
    "mistral": "2023-09-01",
}


def _json_object(value: object) -> object:
    if isinstance(value, str):
        return json.loads(value) if value.strip() else {}
    return value


PriceTable = Annotated[dict[str, list[float]], NoDecode, BeforeValidator(_json_object)]
CutoffTable = Annotated[dict[str, date], NoDecode, BeforeValidator(_json_object)]


def longest_prefix(table: dict[str, object], model: str) -> str | None:
    """The key of `table` that `model` starts with, the longest one (case-insensitive)."""
    name = model.lower().rsplit("/", 1)[-1]
    keys = [k for k in table if name.startswith(k.lower())]
    return max(keys, key=len) if keys else None


class LlmSettings(BaseSettings):
    """What the Lab's agents read: `OMC_LLM_` + the field name in upper case."""

    model_config = SettingsConfigDict(
        env_prefix="OMC_LLM_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    provider: Provider = Field(
        default="none",
        description="`none` (deterministic planner, no LLM), `openai`, `anthropic`, `google`, "
        "`openai-compatible` (Ollama, vLLM, LM Studio… by `OMC_LLM_BASE_URL`) or `local` (a "
        "GGUF file run by llama.cpp on 127.0.0.1).",
    )
    base_url: str | None = Field(
        default=None,
        description="Base URL of an OpenAI-compatible API, ending in `/v1` (the Lab calls "
        "`{base}/chat/completions`); also overrides the OpenAI/Anthropic endpoint.",
    )
    api_key: SecretStr | None = Field(
        default=None, description="The provider's API key (never logged, stored or shown)."
    )
    model: str | None = Field(
        default=None,
        description="Model name (e.g. `gpt-4o-mini`, `claude-sonnet-4-5`, `gemini-2.5-flash`, "
        "`llama3.1`); for `local`, the GGUF file when `OMC_LLM_MODEL_PATH` is unset.",
    )
    model_path: Path | None = Field(
        default=None, description="`local`: the GGUF model file (nothing is downloaded)."
    )
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="Sampling temperature.")
    timeout_s: float = Field(default=60.0, gt=0, description="Timeout of one LLM call (s).")
    max_retries: int = Field(
        default=2, ge=0, le=10, description="Retries of an LLM call on 429, 5xx and timeouts."
    )
    stream: bool = Field(default=False, description="Stream replies (server-sent events).")
    local_threads: int = Field(
        default=1, ge=1, description="`local`: llama.cpp threads (1 on a shared two-core box)."
    )
    local_ctx: int = Field(default=8192, ge=512, description="`local`: context length (tokens).")
    max_calls: int = Field(default=30, ge=1, description="Budget: LLM calls per session.")
    max_tokens: int = Field(
        default=200_000, ge=1, description="Budget: tokens (prompt + reply) per session."
    )
    max_cost_usd: float = Field(
        default=1.0, ge=0, description="Budget: estimated cost per session (USD, price table)."
    )
    max_seconds: float = Field(
        default=600.0, gt=0, description="Budget: wall time of the LLM work per session (s)."
    )
    max_repairs: int = Field(
        default=3,
        ge=0,
        description="Rejected proposals or malformed tool calls sent back to the LLM before "
        "the session stops (`invalid_proposal`).",
    )
    tool_result_chars: int = Field(
        default=6000, ge=500, description="A tool result is cut to this many characters."
    )
    prices: PriceTable = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_PRICES.items()},
        description="JSON object: model (prefix) -> [USD per 1M input tokens, per 1M output "
        "tokens]. Unknown models cost 0 (the report says so).",
    )
    cutoffs: CutoffTable = Field(
        default_factory=lambda: {k: date.fromisoformat(v) for k, v in DEFAULT_CUTOFFS.items()},
        description="JSON object: model (prefix) -> training-data cutoff date; the report flags "
        "evaluation windows before it.",
    )
    cutoff: date | None = Field(
        default=None, description="The configured model's training cutoff (beats the table)."
    )
    mask: bool = Field(
        default=False,
        description="Mask coins (COIN1, COIN2, …) and dates (shifted by whole weeks) in what "
        "the LLM reads.",
    )
    fallback: Literal["none", "deterministic"] = Field(
        default="none",
        description="When the LLM fails: `none` stops the session; `deterministic` plans "
        "with the deterministic planner instead (and says so).",
    )

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("a base URL starts with http:// or https:// (e.g. .../v1)")
        return value.rstrip("/")

    @field_validator("prices")
    @classmethod
    def _prices(cls, value: dict[str, list[float]]) -> dict[str, list[float]]:
        for model, pair in value.items():
            if len(pair) != 2 or min(pair) < 0:
                raise ValueError(f"{model}: a price is [input, output] USD per 1M tokens >= 0")
        return value

    @property
    def enabled(self) -> bool:
        return self.provider != "none"

    def price_of(self, model: str) -> tuple[float, float] | None:
        key = longest_prefix(dict(self.prices), model)
        if key is None:
            return None
        pin, pout = self.prices[key]
        return float(pin), float(pout)

    def cutoff_of(self, model: str) -> date | None:
        if self.cutoff is not None:
            return self.cutoff
        key = longest_prefix(dict(self.cutoffs), model)
        return self.cutoffs[key] if key is not None else None
