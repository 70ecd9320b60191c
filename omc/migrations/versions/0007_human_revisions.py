"""ledgers: revisions of the Human ledger's mutable fields (point-in-time reads)

Every existing news item and social post gets its stored values as its first revision,
stamped with the item's own `collected_at` (what OMC knew then is the best record there is).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 00:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omc.core.db_types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "news_item_revisions",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("source_id", sa.String(length=256), nullable=False),
        sa.Column("published_at", omc.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("sentiment", sa.Float(), nullable=True),
        sa.Column("collected_at", omc.core.db_types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "source", "source_id", "collected_at", name=op.f("pk_news_item_revisions")
        ),
    )
    op.create_table(
        "social_post_revisions",
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("post_id", sa.String(length=64), nullable=False),
        sa.Column("published_at", omc.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("num_comments", sa.Integer(), nullable=True),
        sa.Column("sentiment", sa.Float(), nullable=True),
        sa.Column("collected_at", omc.core.db_types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "platform", "post_id", "collected_at", name=op.f("pk_social_post_revisions")
        ),
    )
    op.execute(
        "INSERT INTO news_item_revisions (source, source_id, published_at, sentiment, "
        "collected_at) SELECT source, source_id, published_at, sentiment, collected_at "
        "FROM news_items"
    )
    op.execute(
        "INSERT INTO social_post_revisions (platform, post_id, published_at, score, "
        "num_comments, sentiment, collected_at) SELECT platform, post_id, published_at, score, "
        "num_comments, sentiment, collected_at FROM social_posts"
    )


def downgrade() -> None:
    op.drop_table("social_post_revisions")
    op.drop_table("news_item_revisions")
