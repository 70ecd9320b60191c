"""`omc db …`: schema migrations, backups and restores; `omc config` to show the settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from omc.cli.context import console, fail, settings

if TYPE_CHECKING:  # pydantic-settings, SQLAlchemy and Alembic load only when a command runs
    from pydantic_settings import BaseSettings


def register(app: typer.Typer) -> None:
    db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
    app.add_typer(db_app, name="db")

    @db_app.command("upgrade")
    def db_upgrade(revision: str = typer.Argument("head")) -> None:
        """Apply migrations up to REVISION (default: the latest)."""
        from omc.core.db import make_engine
        from omc.migrations import current_revision, upgrade

        url = settings().effective_database_url
        engine = make_engine(url)
        upgrade(engine, revision)
        console.print(f"database at revision [bold]{current_revision(engine)}[/] ({engine.url!r})")

    @db_app.command("check")
    def db_check() -> None:
        """Readiness: the database answers and is at this version's latest migration (exit 1
        otherwise). Changes nothing — the containers' health check."""
        from omc.cli.errors import public_url
        from omc.core.db import make_engine
        from omc.migrations import current_revision, head_revision

        url = settings().effective_database_url
        engine = make_engine(url)
        try:
            now, head = current_revision(engine), head_revision()
        finally:
            engine.dispose()
        if now != head:
            where = f"database {public_url(url)} is at revision {now}"
            fail(f"{where}, not {head}: run `omc db upgrade`", 1)
        console.print(f"database {public_url(url)} ready at revision {now}", highlight=False)

    @db_app.command("backup")
    def db_backup(
        file: Path = typer.Argument(..., help="Backup file to write (replaced atomically)."),
    ) -> None:
        """Back up the database: SQLite online backup (safe while collectors write) or
        PostgreSQL `pg_dump -Fc`."""
        from omc.cli.errors import public_url
        from omc.ops.backup import BackupError, backup

        url = settings().effective_database_url
        try:
            done = backup(url, file)
        except BackupError as exc:
            fail(str(exc), 1)
        console.print(
            f"backed up {done.backend} database {public_url(url)} (revision {done.revision}) "
            f"to {done.path} ({done.size:,} bytes)",
            soft_wrap=True,
            highlight=False,
        )

    @db_app.command("restore")
    def db_restore(
        file: Path = typer.Argument(..., help="Backup file made by `omc db backup`."),
        force: bool = typer.Option(False, "--force", help="Overwrite a database holding data."),
    ) -> None:
        """Replace the database with a backup (refuses a non-empty database without --force
        and a backup from a newer OMC), then bring it to the latest schema."""
        from omc.cli.errors import public_url
        from omc.core.db import make_engine
        from omc.migrations import current_revision, known_revisions, upgrade
        from omc.ops.backup import BackupError, restore

        url = settings().effective_database_url
        try:
            done = restore(url, file, known_revisions=known_revisions(), force=force)
        except BackupError as exc:
            fail(str(exc), 1)
        engine = make_engine(url)
        try:
            upgrade(engine)
            now = current_revision(engine)
        finally:
            engine.dispose()
        upgraded = "" if now == done.revision else f", upgraded to {now}"
        console.print(
            f"restored {done.path} (revision {done.revision}{upgraded}) into {public_url(url)}",
            soft_wrap=True,
            highlight=False,
        )

    @app.command("config")
    def config(
        markdown: bool = typer.Option(False, help="Print the README's configuration table."),
        as_json: bool = typer.Option(False, "--json", help="Print current values as JSON."),
    ) -> None:
        """Show every setting, its environment variable, default and current value."""
        from pydantic import SecretStr

        from omc.core.config import Settings
        from omc.core.masking import mask_setting

        current = settings()
        if as_json:
            dumped = current.model_dump(mode="json")
            shown = {
                name: mask_setting(name, getattr(current, name))
                if isinstance(getattr(current, name), SecretStr)
                else mask_setting(name, value)
                for name, value in dumped.items()
            }
            console.print_json(json.dumps(shown))
            return
        rows = []
        for group in setting_groups():
            prefix = str(group.model_config.get("env_prefix", "OMC_")).upper()
            instance = current if group is Settings else group()
            for name, field in group.model_fields.items():
                if field.default_factory is not None:
                    default = field.default_factory()  # type: ignore[call-arg]
                else:
                    default = field.default
                value = mask_setting(name, getattr(instance, name))
                doc = field.description or GUARD_DOCS.get(name, "")
                rows.append(
                    (f"{prefix}{name.upper()}", json.dumps(default, default=str), str(value), doc)
                )
        if markdown:
            print("| setting | default | meaning |\n|---|---|---|")
            for env, default, _value, doc in rows:
                print(f"| `{env}` | `{default}` | {doc} |")
            return
        table = Table("setting", "default", "current", "meaning")
        for row in rows:
            table.add_row(*row)
        console.print(table)


GUARD_DOCS = {
    "max_order_notional": "Largest order value (quote currency).",
    "min_order_notional": "Smallest order value (quote currency).",
    "max_position_notional": "Largest position per coin (quote currency).",
    "max_position_pct": "Largest position per coin as a share of equity.",
    "max_open_positions": "Most coins held at once.",
    "max_gross_exposure_pct": "Gross exposure limit as a share of equity.",
    "max_daily_loss": "Daily loss limit, realised + unrealised (quote currency).",
    "max_daily_loss_pct": "Daily loss limit as a share of the day's starting equity.",
    "drawdown_warn_pct": "Warn at this drawdown from peak equity.",
    "drawdown_halt_pct": "Halt the account (reducing orders only) at this drawdown from peak.",
    "max_orders_per_minute": "Order rate limit per account.",
    "max_quote_age_s": "Refuse orders when the latest price is older (s).",
    "max_clock_skew_s": "Refuse orders on a price stamped more than this in the future (s).",
    "cooldown_after_loss_s": "No new entries for this long after a losing trade (s).",
    "capital_initial": "Staged capital: a new strategy's capital cap (null: no staging).",
    "capital_step": "Staged capital: how much the cap grows per step.",
    "capital_max": "Staged capital: the largest cap.",
    "capital_clean_days": "Staged capital: days within limits before the cap grows.",
    "cash_fee_bps": "Fee reserved on top of a buy's notional when checking cash (bps).",
    "api_key": "API key (kept secret; never logged).",
    "api_secret": "API secret (kept secret; never logged).",
}


def setting_groups() -> list[type[BaseSettings]]:
    """Settings of the core, of the Floor (guard, paper, live switch, exchange keys), of the
    HTTP API and of the Lab's LLM agents."""
    from omc.api.settings import ApiSettings
    from omc.core.config import Settings
    from omc.floor.trading.guard import GuardSettings
    from omc.floor.trading.session import LiveSettings
    from omc.floor.venues.coinspot_signing import CoinSpotCredentials
    from omc.floor.venues.paper import PaperSettings
    from omc.lab.agents.settings import LlmSettings

    groups: list[type[BaseSettings]] = [
        Settings,
        LiveSettings,
        GuardSettings,
        PaperSettings,
        CoinSpotCredentials,
        ApiSettings,
        LlmSettings,
    ]
    try:
        from omc.floor.venues.ccxt_venue import CcxtCredentials

        groups.append(CcxtCredentials)
    except ImportError:
        pass
    return groups
