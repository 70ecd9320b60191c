"""lab: the append-only event log of each session (`lab_events`), and room for longer
session statuses (`pending_approval`)

`lab_events` rows are numbered 1, 2, … per session (unique (session, seq)); triggers on both
backends refuse UPDATE and DELETE, so the log can only grow. `lab_sessions.status` grows to
32 characters on PostgreSQL (SQLite does not enforce the length: its table is left alone).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 13:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omc.core.db_types

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MESSAGE = "lab_events is append-only"


def upgrade() -> None:
    op.create_table(
        "lab_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("session", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", omc.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session"], ["lab_sessions.id"], name=op.f("fk_lab_events_session_lab_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lab_events")),
        sa.UniqueConstraint("session", "seq", name=op.f("uq_lab_events_session_seq")),
    )
    if op.get_bind().dialect.name == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER lab_events_no_{action.lower()} BEFORE {action} ON lab_events "
                f"BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END"
            )
        return
    op.execute(
        "CREATE FUNCTION lab_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN RAISE EXCEPTION '{_MESSAGE}'; END $$"
    )
    op.execute(
        "CREATE TRIGGER lab_events_append_only BEFORE UPDATE OR DELETE ON lab_events "
        "FOR EACH ROW EXECUTE FUNCTION lab_events_append_only()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS lab_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS lab_events_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS lab_events_append_only ON lab_events")
        op.execute("DROP FUNCTION IF EXISTS lab_events_append_only()")
    op.drop_table("lab_events")
