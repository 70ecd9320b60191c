"""`LlmError`: the one error the Lab's LLM agents raise, with a status and one masked line.

Statuses: `config_error` (a setting is missing or wrong), `provider_error` (the provider
failed: `reason` says `unauthorized`, `rate_limited`, `timeout`, `unreachable`, `not_found`
or `bad_response`), `budget_exhausted` (`reason`: calls, tokens, cost or seconds) and
`invalid_proposal` (the LLM kept proposing what validation rejects). The message never
contains the API key (`omc.core.masking`).
"""

from __future__ import annotations

from typing import Literal

Status = Literal["config_error", "provider_error", "budget_exhausted", "invalid_proposal"]


class LlmError(Exception):
    """The LLM work of a session stopped: `status`, a finer `reason`, one clear line."""

    def __init__(self, status: Status, message: str, *, reason: str | None = None) -> None:
        line = " ".join(message.split())
        super().__init__(line)
        self.status: Status = status
        self.reason = reason
        self.message = line

    def line(self) -> str:
        """`llm provider_error (unauthorized): …` — what the CLI prints."""
        why = f" ({self.reason})" if self.reason else ""
        return f"llm {self.status}{why}: {self.message}"
