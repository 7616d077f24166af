"""Accounts on both databases: users, sign-in, sessions, invitations, resets, roles, audit."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import SecretStr, ValidationError

from server.accounts import passwords
from server.accounts import service as accounts
from server.accounts.audit import Actor
from server.accounts.config import SecretKeyError
from server.accounts.models import PasswordReset, WebSession
from server.accounts.repository import AccountRepository
from server.accounts.roles import Role
from server.accounts.service import AccountError, AccountKeys
from server.settings import Settings
from tests.server.conftest import Db, Tenant, make_tenant
from tests.server.dashboard.seed import PASSWORD, add_user

KEYS = AccountKeys.from_settings(Settings(secret_key=SecretStr("k" * 40)))


def test_password_hash_is_argon2id_and_verifies():
    h = passwords.hash_password(PASSWORD)
    assert h.startswith("$argon2id$")
    assert passwords.verify_password(h, PASSWORD)
    assert not passwords.verify_password(h, PASSWORD + "x")
    assert not passwords.verify_password(None, PASSWORD)
    with pytest.raises(passwords.PasswordPolicyError, match="at least 10"):
        passwords.hash_password("short")


def test_sign_in_sessions_and_sign_out(db: Db, tenant: Tenant):
    user_id = add_user(db, tenant.name, " Owner@Example.COM ")
    with db.sessions.begin() as s:
        assert accounts.authenticate(s, "owner@example.com", "wrong password!") is None
        assert accounts.authenticate(s, "nobody@example.com", PASSWORD) is None
        user = accounts.authenticate(s, "OWNER@example.com", PASSWORD)
        assert user is not None and user.id == user_id and user.last_login_at is not None
        started = accounts.start_session(s, user, KEYS)
        token = started.token
        stored = s.get(WebSession, started.web_session.token_hash)
        assert stored is not None and stored.token_hash != token  # only the hash is kept
    with db.sessions.begin() as s:
        found = accounts.session_user(s, token)
        assert found is not None and found[1].id == user_id
        assert accounts.session_user(s, token + "x") is None
        # an expired session is refused
        found[0].expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with db.sessions.begin() as s:
        assert accounts.session_user(s, token) is None
    with db.sessions.begin() as s:
        user = accounts.authenticate(s, "owner@example.com", PASSWORD)
        assert user is not None
        token = accounts.start_session(s, user, KEYS).token
    with db.sessions.begin() as s:
        accounts.end_session(s, token)
    with db.sessions.begin() as s:
        assert accounts.session_user(s, token) is None


def test_duplicate_email_and_bad_role_are_refused(db: Db, tenant: Tenant):
    add_user(db, tenant.name, "a@example.com")
    with db.sessions.begin() as s, pytest.raises(AccountError, match="already exists"):
        accounts.create_user_in(s, tenant.name, "A@example.com", PASSWORD, Role.MEMBER)
    with pytest.raises(ValueError, match="choose one of owner, admin, member, viewer"):
        Role.parse("superuser")


def test_invitation_link_is_signed_single_use_and_audited(db: Db, tenant: Tenant):
    owner_id = add_user(db, tenant.name, "owner@example.com")
    with db.sessions.begin() as s:
        owner = AccountRepository(s).user(owner_id)
        assert owner is not None
        invitation, token = accounts.invite(s, owner, "new@example.com", Role.MEMBER, KEYS)
    with db.sessions.begin() as s, pytest.raises(AccountError, match="not valid"):
        accounts.open_invitation(s, token[:-2] + "xx", KEYS)  # forged
    other = AccountKeys.from_settings(Settings(secret_key=SecretStr("z" * 40)))
    with db.sessions.begin() as s, pytest.raises(AccountError, match="not valid"):
        accounts.open_invitation(s, token, other)  # another server's key
    with db.sessions.begin() as s, pytest.raises(AccountError, match="not valid"):
        accounts.open_password_reset(s, token, KEYS)  # signed for another purpose
    with db.sessions.begin() as s:
        user = accounts.accept_invitation(s, token, "New Person", PASSWORD, KEYS)
        assert (user.email, user.role, user.organization_id) == (
            "new@example.com",
            "member",
            invitation.organization_id,
        )
    with db.sessions.begin() as s, pytest.raises(AccountError, match="already used"):
        accounts.accept_invitation(s, token, "Again", PASSWORD, KEYS)
    with db.sessions.begin() as s:
        actions = [e.action for e in AccountRepository(s).audit_of(user.organization_id)]
        assert actions == [
            "user.created",
            "invitation.created",
            "user.created",
            "invitation.accepted",
        ]


def test_member_cannot_invite_and_admin_cannot_make_owners(db: Db, tenant: Tenant):
    member_id = add_user(db, tenant.name, "m@example.com", Role.MEMBER)
    admin_id = add_user(db, tenant.name, "a@example.com", Role.ADMIN)
    with db.sessions.begin() as s:
        repo = AccountRepository(s)
        member, admin = repo.user(member_id), repo.user(admin_id)
        assert member is not None and admin is not None
        with pytest.raises(AccountError, match="owner or an admin"):
            accounts.invite(s, member, "x@example.com", Role.VIEWER, KEYS)
        with pytest.raises(AccountError, match="cannot invite"):
            accounts.invite(s, admin, "x@example.com", Role.OWNER, KEYS)
        with pytest.raises(AccountError, match="cannot change"):
            accounts.change_role(s, admin, member_id, Role.OWNER)


def test_last_owner_stays_and_roles_change_within_the_organisation(db: Db, tenant: Tenant):
    owner_id = add_user(db, tenant.name, "o@example.com")
    member_id = add_user(db, tenant.name, "m@example.com", Role.MEMBER)
    make_tenant(db, "Other Org")
    stranger_id = add_user(db, "Other Org", "s@example.com", Role.MEMBER)
    with db.sessions.begin() as s:
        owner = AccountRepository(s).user(owner_id)
        assert owner is not None
        with pytest.raises(AccountError, match="at least one owner"):
            accounts.change_role(s, owner, owner_id, Role.MEMBER)
        with pytest.raises(AccountError, match="no such user"):
            accounts.change_role(s, owner, stranger_id, Role.VIEWER)
        changed = accounts.change_role(s, owner, member_id, Role.ADMIN)
        assert changed.role == "admin"
        entry = AccountRepository(s).audit_of(owner.organization_id, "user", str(member_id))[-1]
        assert entry.before is not None and entry.before["role"] == "member"
        assert entry.after is not None and entry.after["role"] == "admin"
        assert entry.actor_user_id == owner_id and entry.actor == "o@example.com"
        assert "password_hash" not in entry.after


def test_password_reset_is_single_use_expiring_and_ends_sessions(db: Db, tenant: Tenant):
    user_id = add_user(db, tenant.name, "u@example.com")
    with db.sessions.begin() as s:
        user = AccountRepository(s).user(user_id)
        assert user is not None
        session_token = accounts.start_session(s, user, KEYS).token
        token = accounts.issue_password_reset(s, user, Actor.system("test"), KEYS)
        expired = accounts.issue_password_reset(s, user, Actor.system("test"), KEYS)
    with db.sessions.begin() as s:
        for reset in s.query(PasswordReset).all():
            if KEYS.resets.sign(reset.id) == expired:
                reset.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with db.sessions.begin() as s, pytest.raises(AccountError, match="expired"):
        accounts.reset_password(s, expired, "a brand new password", KEYS)
    with db.sessions.begin() as s, pytest.raises(AccountError, match="at least 10"):
        accounts.reset_password(s, token, "short", KEYS)
    with db.sessions.begin() as s:
        accounts.reset_password(s, token, "a brand new password", KEYS)
    with db.sessions.begin() as s:
        assert accounts.session_user(s, session_token) is None
        assert accounts.authenticate(s, "u@example.com", PASSWORD) is None
        assert accounts.authenticate(s, "u@example.com", "a brand new password") is not None
    with db.sessions.begin() as s, pytest.raises(AccountError, match="already used"):
        accounts.reset_password(s, token, "another new password", KEYS)


def test_secret_key_is_required_and_real_outside_development(monkeypatch: pytest.MonkeyPatch):
    for key in ("RM_SECRET_KEY", "RM_ENVIRONMENT"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(SecretKeyError, match="RM_SECRET_KEY is not set"):
        AccountKeys.from_settings(Settings(environment="production"))
    with pytest.raises(ValidationError, match="RM_SECRET_KEY is a placeholder"):
        Settings(environment="production", secret_key=SecretStr("changeme"))
    with pytest.raises(ValidationError, match="shorter than 32"):
        Settings(environment="production", secret_key=SecretStr("x" * 20))
    real = AccountKeys.from_settings(
        Settings(environment="production", secret_key=SecretStr("r" * 48))
    )
    assert real.secret_key == "r" * 48
    assert AccountKeys.from_settings(Settings()).secret_key  # development has a fallback
