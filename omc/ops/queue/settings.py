"""The queue's settings (`OMC_BROKER_URL`, …): without a broker every command runs in process."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

QUEUES = ("collect", "compute", "notify")
"""The queues: collector runs, candles, backfills | backtests, sweeps | notifier deliveries."""
BROKER_SCHEMES = ("redis://", "rediss://", "amqp://", "amqps://", "pyamqp://")


class QueueSettings(BaseSettings):
    """Where the workers' broker is and how jobs are retried."""

    model_config = SettingsConfigDict(
        env_prefix="OMC_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    broker_url: str | None = Field(
        default=None,
        description="Celery broker: `redis://host:6379/0` (default choice) or "
        "`amqp://user:pass@host:5672//` (RabbitMQ). Unset: no workers, jobs run in process.",
    )
    result_backend: str | None = Field(
        default=None,
        description="Where sweep chunks return their rows. Unset: the broker itself for Redis, "
        "`rpc://` for RabbitMQ.",
    )
    queue_visibility_s: float = Field(
        default=3600.0,
        gt=0,
        description="Redis broker: a job not acknowledged this long after delivery (its worker "
        "died) is delivered again to another worker. Longer than the longest job.",
    )
    queue_max_attempts: int = Field(
        default=3, ge=1, description="Starts of a job before it goes to the dead letters."
    )
    queue_retry_delay_s: float = Field(
        default=2.0, ge=0, description="Delay before a failed job is retried."
    )
    scheduler_lease_s: float = Field(
        default=15.0,
        gt=0,
        description="The active scheduler's lease: a standby takes over this long after the "
        "active one stopped renewing it (at once when it died on the same host).",
    )

    @field_validator("broker_url", "result_backend")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if not value:
            return None
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker(cls, value: str | None) -> str | None:
        if value and not value.startswith(BROKER_SCHEMES):
            raise ValueError(
                f"a broker URL starts with {', '.join(BROKER_SCHEMES)} "
                "(e.g. redis://localhost:6379/0)"
            )
        return value

    @property
    def effective_result_backend(self) -> str | None:
        if self.result_backend:
            return self.result_backend
        if self.broker_url is None:
            return None
        return self.broker_url if self.broker_url.startswith("redis") else "rpc://"
