"""staff accounts

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import orchestrator.db

revision: str = '0009'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('staff_login_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('at', orchestrator.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_login_failures'))
    )
    with op.batch_alter_table('staff_login_failures', schema=None) as batch_op:
        batch_op.create_index('ix_staff_login_failures_subject_at', ['subject', 'at'], unique=False)

    op.create_table('staff_users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=True),
    sa.Column('language', sa.String(length=2), nullable=True),
    sa.Column('created_at', orchestrator.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('password_changed_at', orchestrator.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('disabled_at', orchestrator.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_users')),
    sa.UniqueConstraint('email', name=op.f('uq_staff_users_email'))
    )
    op.create_table('staff_api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=False),
    sa.Column('created_at', orchestrator.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', orchestrator.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', orchestrator.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['staff_users.id'], name=op.f('fk_staff_api_tokens_user_id_staff_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_staff_api_tokens_token_hash'))
    )
    with op.batch_alter_table('staff_api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_api_tokens_user_id'), ['user_id'], unique=False)

    op.create_table('staff_audit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', orchestrator.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('client', sa.String(length=64), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['staff_users.id'], name=op.f('fk_staff_audit_user_id_staff_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_audit'))
    )
    with op.batch_alter_table('staff_audit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_audit_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_staff_audit_user_id'), ['user_id'], unique=False)

    op.create_table('staff_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.Enum('set_password', 'reset_password', name='staff_link_purpose', native_enum=False, create_constraint=True, length=22), nullable=False),
    sa.Column('created_at', orchestrator.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', orchestrator.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', orchestrator.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['staff_users.id'], name=op.f('fk_staff_links_user_id_staff_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_links')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_staff_links_token_hash'))
    )
    with op.batch_alter_table('staff_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_links_user_id'), ['user_id'], unique=False)

    op.create_table('staff_logins',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', orchestrator.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', orchestrator.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', orchestrator.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['staff_users.id'], name=op.f('fk_staff_logins_user_id_staff_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_logins')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_staff_logins_token_hash'))
    )
    with op.batch_alter_table('staff_logins', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_logins_user_id'), ['user_id'], unique=False)

    op.create_table('staff_grants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.Enum('organiser', 'moderator', 'checkin', name='staff_role', native_enum=False, create_constraint=True, length=17), nullable=False),
    sa.Column('conference_id', sa.Integer(), nullable=True),
    sa.Column('forum_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['conference_id'], ['conferences.id'], name=op.f('fk_staff_grants_conference_id_conferences'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['forum_id'], ['forums.id'], name=op.f('fk_staff_grants_forum_id_forums'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['staff_users.id'], name=op.f('fk_staff_grants_user_id_staff_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_grants')),
    sa.UniqueConstraint('user_id', 'role', 'conference_id', 'forum_id', name=op.f('uq_staff_grants_user_id_role_conference_id_forum_id'))
    )
    with op.batch_alter_table('staff_grants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_grants_conference_id'), ['conference_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_staff_grants_forum_id'), ['forum_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('staff_grants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_grants_forum_id'))
        batch_op.drop_index(batch_op.f('ix_staff_grants_conference_id'))

    op.drop_table('staff_grants')
    with op.batch_alter_table('staff_logins', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_logins_user_id'))

    op.drop_table('staff_logins')
    with op.batch_alter_table('staff_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_links_user_id'))

    op.drop_table('staff_links')
    with op.batch_alter_table('staff_audit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_audit_user_id'))
        batch_op.drop_index(batch_op.f('ix_staff_audit_at'))

    op.drop_table('staff_audit')
    with op.batch_alter_table('staff_api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_api_tokens_user_id'))

    op.drop_table('staff_api_tokens')
    op.drop_table('staff_users')
    with op.batch_alter_table('staff_login_failures', schema=None) as batch_op:
        batch_op.drop_index('ix_staff_login_failures_subject_at')

    op.drop_table('staff_login_failures')
