"""lab: research sessions, their trials, sealed-holdout openings

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 00:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omc.core.db_types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lab_sessions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", omc.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", omc.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("goal", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=True),
        sa.Column("as_of", omc.core.db_types.UTCDateTime(), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("plan", sa.JSON(), nullable=True),
        sa.Column("question", sa.Text(), nullable=True),
        sa.Column("verdict", sa.String(length=16), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=True),
        sa.Column("oos", sa.JSON(), nullable=True),
        sa.Column("baseline", sa.JSON(), nullable=True),
        sa.Column("n_trials", sa.Integer(), nullable=False),
        sa.Column("report_path", sa.Text(), nullable=True),
        sa.Column("artifact_dir", sa.Text(), nullable=True),
        sa.Column("artifact_hash", sa.String(length=64), nullable=True),
        sa.Column("approval", sa.String(length=16), nullable=False),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("decided_at", omc.core.db_types.UTCDateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lab_sessions")),
    )
    op.create_index("ix_lab_sessions_created_at", "lab_sessions", ["created_at"], unique=False)
    op.create_table(
        "lab_trials",
        sa.Column("session", sa.String(length=32), nullable=False),
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("model", sa.String(length=32), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("fold_scores", sa.JSON(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session"],
            ["lab_sessions.id"],
            name=op.f("fk_lab_trials_session_lab_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session", "number", name=op.f("pk_lab_trials")),
    )
    op.create_table(
        "lab_holdout_openings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dataset_key", sa.String(length=64), nullable=False),
        sa.Column("dataset", sa.Text(), nullable=False),
        sa.Column("session", sa.String(length=32), nullable=False),
        sa.Column("opened_at", omc.core.db_types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session"],
            ["lab_sessions.id"],
            name=op.f("fk_lab_holdout_openings_session_lab_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lab_holdout_openings")),
        sa.UniqueConstraint(
            "dataset_key", "session", name=op.f("uq_lab_holdout_openings_dataset_key_session")
        ),
    )


def downgrade() -> None:
    op.drop_table("lab_holdout_openings")
    op.drop_table("lab_trials")
    op.drop_index("ix_lab_sessions_created_at", table_name="lab_sessions")
    op.drop_table("lab_sessions")
