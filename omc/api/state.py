"""What one app instance holds: the settings, the migrated engine, the token signer, the
login limiter, the CSRF key, the backtest job runner, the paper sessions, the
account read models, the credential vault, the broker (when jobs go to workers) and how to
read the schema's revisions (`request.app.state.omc`)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from omc.api.auth.ratelimit import LoginLimiter
from omc.api.auth.tokens import TokenSigner
from omc.api.settings import ApiSettings
from omc.core.config import Settings

if TYPE_CHECKING:
    from omc.api.jobs import BacktestJobs
    from omc.api.services.lab import LabStudies
    from omc.api.services.paper import PaperSessions
    from omc.api.vault import Vault
    from omc.floor.trading.reads import Views


SchemaCheck = Callable[[Engine], tuple[str | None, str | None]]


@dataclass
class ApiState:
    settings: Settings
    api: ApiSettings
    engine: Engine
    signer: TokenSigner
    limiter: LoginLimiter
    csrf_key: bytes
    jobs: BacktestJobs
    paper: PaperSessions
    lab: LabStudies
    views: Views
    vault: Vault
    broker_url: str | None = None
    schema: SchemaCheck | None = None
    """(current, head) migration revisions, for `/ready` (the shell wires it)."""

    def csrf_for(self, access_token: str) -> str:
        """The CSRF token bound to a cookie session's access token (double submit, signed)."""
        return hmac.new(self.csrf_key, access_token.encode(), hashlib.sha256).hexdigest()
