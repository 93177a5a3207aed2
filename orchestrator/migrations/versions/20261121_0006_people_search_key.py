"""people search key: case- and accent-insensitive name search on both backends

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from orchestrator.participants.search_keys import search_key

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.add_column(sa.Column('search_key', sa.Text(), nullable=False, server_default=''))

    # Key the people already there (the app keeps the key current from now on).
    people = sa.table(
        'people',
        sa.column('id', sa.Uuid()),
        sa.column('first_name', sa.String()),
        sa.column('last_name', sa.String()),
        sa.column('email', sa.String()),
        sa.column('organisation', sa.String()),
        sa.column('search_key', sa.Text()),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(people.c.id, people.c.first_name, people.c.last_name, people.c.email, people.c.organisation)
    ).all()
    if rows:
        connection.execute(
            people.update().where(people.c.id == sa.bindparam('person_id')),
            [{'person_id': row.id, 'search_key': search_key(*row[1:])} for row in rows],
        )


def downgrade() -> None:
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.drop_column('search_key')
