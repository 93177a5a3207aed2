"""check-in undos: a check-in taken back, kept with who, when and why

Revision ID: 0013
Revises: 0010
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import orchestrator.db

revision: str = '0013'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('check_in_undos',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('arrived_at', orchestrator.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('left_at', orchestrator.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('method', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('undone_by', sa.String(length=200), nullable=False),
    sa.Column('undone_at', orchestrator.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_check_in_undos_person_id_people'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], name=op.f('fk_check_in_undos_session_id_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_check_in_undos'))
    )
    with op.batch_alter_table('check_in_undos', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_check_in_undos_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_check_in_undos_session_id'), ['session_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('check_in_undos', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_check_in_undos_session_id'))
        batch_op.drop_index(batch_op.f('ix_check_in_undos_person_id'))

    op.drop_table('check_in_undos')
