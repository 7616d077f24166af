"""Accounts: users and roles, sign-in and web sessions, invitations and password resets.

Callers own the transaction; every change is written to the audit log in it. Clear tokens
(session, invitation, reset) exist only in return values; the database keeps hashes or ids.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from server.accounts import passwords
from server.accounts.audit import Actor, record_change
from server.accounts.config import AccountsSettings, secret_key_value
from server.accounts.models import Invitation, PasswordReset, User, WebSession
from server.accounts.repository import AccountRepository
from server.accounts.roles import MANAGE_USERS, Role
from server.accounts.tokens import LinkSigner, new_token, token_hash
from server.db.base import utcnow
from server.settings import Settings

logger = logging.getLogger(__name__)


class AccountError(ValueError):
    """An account operation that can't be done; the message says why, in words for a person."""


@dataclass(frozen=True)
class AccountKeys:
    """Configuration and signers of accounts, built once at start from the settings."""

    config: AccountsSettings
    secret_key: str
    invitations: LinkSigner
    resets: LinkSigner

    @classmethod
    def from_settings(cls, settings: Settings) -> AccountKeys:
        key = secret_key_value(settings.secret_key, settings.environment)
        return cls(
            settings.accounts,
            key,
            LinkSigner(key, "invitation"),
            LinkSigner(key, "password-reset"),
        )


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or " " in email or len(email) > 320:
        raise AccountError(f"{email!r} is not an e-mail address")
    return email


def user_actor(user: User) -> Actor:
    return Actor(label=user.email, user_id=user.id)


def _user_view(user: User) -> dict[str, object]:
    """What the audit log keeps of a user (never the password hash)."""
    return {
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "disabled": user.disabled_at is not None,
    }


def create_user(
    session: Session,
    *,
    organization_id: uuid.UUID,
    email: str,
    password: str,
    role: Role,
    actor: Actor,
    name: str = "",
) -> User:
    repo = AccountRepository(session)
    email = normalise_email(email)
    if repo.organization(organization_id) is None:
        raise AccountError(f"no organisation {organization_id}")
    if repo.user_by_email(email) is not None:
        raise AccountError(f"a user with the e-mail {email} already exists")
    try:
        password_hash = passwords.hash_password(password)
    except passwords.PasswordPolicyError as exc:
        raise AccountError(str(exc)) from exc
    user = repo.add_user(
        User(
            organization_id=organization_id,
            email=email,
            name=name.strip()[:200],
            role=role.value,
            password_hash=password_hash,
        )
    )
    record_change(
        session,
        actor=actor,
        organization_id=organization_id,
        action="user.created",
        entity_type="user",
        entity_id=user.id,
        before=None,
        after=_user_view(user),
    )
    logger.info("created user %s (%s) with role %s", user.id, email, role.value)
    return user


def create_user_in(
    session: Session, organization: str, email: str, password: str, role: Role, *, name: str = ""
) -> User:
    """A user of the organisation named `organization` (the admin command's way in)."""
    org = AccountRepository(session).organization_by_name(organization)
    if org is None:
        raise AccountError(f"no organisation named {organization!r}; create it first")
    return create_user(
        session,
        organization_id=org.id,
        email=email,
        password=password,
        role=role,
        actor=Actor.system("cli"),
        name=name,
    )


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The active user with this e-mail and password, else None (same time either way)."""
    try:
        email = normalise_email(email)
    except AccountError:
        passwords.verify_password(None, password)
        return None
    user = AccountRepository(session).user_by_email(email)
    if user is None or user.disabled_at is not None:
        passwords.verify_password(None, password)
        return None
    if not passwords.verify_password(user.password_hash, password):
        return None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    user.last_login_at = utcnow()
    return user


@dataclass(frozen=True)
class StartedSession:
    token: str
    web_session: WebSession


def start_session(
    session: Session, user: User, keys: AccountKeys, user_agent: str = ""
) -> StartedSession:
    """A new server-side session; the clear token goes into the cookie only."""
    now = utcnow()
    token = new_token()
    web_session = WebSession(
        token_hash=token_hash(token),
        user_id=user.id,
        csrf_token=new_token(),
        created_at=now,
        expires_at=now + dt.timedelta(hours=keys.config.session_hours),
        user_agent=user_agent[:300],
    )
    AccountRepository(session).add_session(web_session)
    return StartedSession(token, web_session)


def session_user(session: Session, token: str) -> tuple[WebSession, User] | None:
    """The live session of the cookie `token` and its (active) user."""
    return AccountRepository(session).live_session(token_hash(token), utcnow())


def end_session(session: Session, token: str) -> None:
    AccountRepository(session).delete_session(token_hash(token))


def _require_manager(actor: User) -> None:
    if not Role(actor.role).at_least(MANAGE_USERS):
        raise AccountError("only an owner or an admin can manage the team")


def invite(
    session: Session, inviter: User, email: str, role: Role, keys: AccountKeys
) -> tuple[Invitation, str]:
    """An invitation to the inviter's organisation and its signed link token."""
    _require_manager(inviter)
    if not Role(inviter.role).at_least(role):
        raise AccountError(f"a {inviter.role} cannot invite an {role.value}")
    repo = AccountRepository(session)
    email = normalise_email(email)
    if repo.user_by_email(email) is not None:
        raise AccountError(f"{email} already has an account")
    invitation = Invitation(
        organization_id=inviter.organization_id,
        email=email,
        role=role.value,
        invited_by=inviter.id,
        expires_at=utcnow() + dt.timedelta(hours=keys.config.invitation_hours),
    )
    repo.add(invitation)
    record_change(
        session,
        actor=user_actor(inviter),
        organization_id=inviter.organization_id,
        action="invitation.created",
        entity_type="invitation",
        entity_id=invitation.id,
        before=None,
        after={"email": email, "role": role.value},
    )
    return invitation, keys.invitations.sign(invitation.id)


def open_invitation(session: Session, token: str, keys: AccountKeys) -> Invitation:
    """The invitation of a link, if it can still be accepted."""
    ident = keys.invitations.unsign(token, keys.config.invitation_hours * 3600)
    invitation = AccountRepository(session).invitation(ident) if ident else None
    if invitation is None:
        raise AccountError("this invitation link is not valid; ask for a new one")
    if invitation.accepted_at is not None:
        raise AccountError("this invitation was already used; sign in instead")
    if invitation.revoked_at is not None or invitation.expires_at <= utcnow():
        raise AccountError("this invitation has expired; ask for a new one")
    return invitation


def accept_invitation(
    session: Session, token: str, name: str, password: str, keys: AccountKeys
) -> User:
    invitation = open_invitation(session, token, keys)
    user = create_user(
        session,
        organization_id=invitation.organization_id,
        email=invitation.email,
        password=password,
        role=Role(invitation.role),
        actor=Actor(label=invitation.email),
        name=name,
    )
    invitation.accepted_at = utcnow()
    record_change(
        session,
        actor=user_actor(user),
        organization_id=invitation.organization_id,
        action="invitation.accepted",
        entity_type="invitation",
        entity_id=invitation.id,
        before={"accepted": False},
        after={"accepted": True, "user_id": str(user.id)},
    )
    return user


def issue_password_reset(session: Session, user: User, actor: Actor, keys: AccountKeys) -> str:
    """A signed, expiring, single-use reset token for `user`."""
    reset = PasswordReset(
        user_id=user.id, expires_at=utcnow() + dt.timedelta(minutes=keys.config.reset_minutes)
    )
    AccountRepository(session).add(reset)
    record_change(
        session,
        actor=actor,
        organization_id=user.organization_id,
        action="password_reset.issued",
        entity_type="user",
        entity_id=user.id,
        before=None,
        after={"reset_id": str(reset.id)},
    )
    return keys.resets.sign(reset.id)


def open_password_reset(session: Session, token: str, keys: AccountKeys) -> PasswordReset:
    ident = keys.resets.unsign(token, keys.config.reset_minutes * 60)
    reset = AccountRepository(session).password_reset(ident) if ident else None
    if reset is None:
        raise AccountError("this reset link is not valid; ask for a new one")
    if reset.used_at is not None:
        raise AccountError("this reset link was already used; ask for a new one")
    if reset.expires_at <= utcnow():
        raise AccountError("this reset link has expired; ask for a new one")
    return reset


def reset_password(session: Session, token: str, password: str, keys: AccountKeys) -> User:
    """Set a new password with a reset token; the token is spent and every session ends."""
    reset = open_password_reset(session, token, keys)
    repo = AccountRepository(session)
    user = repo.user(reset.user_id)
    if user is None or user.disabled_at is not None:
        raise AccountError("this account is disabled")
    try:
        user.password_hash = passwords.hash_password(password)
    except passwords.PasswordPolicyError as exc:
        raise AccountError(str(exc)) from exc
    reset.used_at = utcnow()
    repo.delete_sessions_of(user.id)
    record_change(
        session,
        actor=user_actor(user),
        organization_id=user.organization_id,
        action="password.reset",
        entity_type="user",
        entity_id=user.id,
        before=None,
        after={"password": "changed", "reset_id": str(reset.id)},
    )
    return user


def team_member(session: Session, actor: User, user_id: uuid.UUID) -> User:
    """A user of the actor's organisation (never another's)."""
    user = AccountRepository(session).user(user_id)
    if user is None or user.organization_id != actor.organization_id:
        raise AccountError("no such user in your organisation")
    return user


def change_role(session: Session, actor: User, user_id: uuid.UUID, role: Role) -> User:
    _require_manager(actor)
    user = team_member(session, actor, user_id)
    mine = Role(actor.role)
    if not mine.at_least(Role(user.role)) or not mine.at_least(role):
        raise AccountError(f"a {actor.role} cannot change a {user.role} to {role.value}")
    if user.role == Role.OWNER and role != Role.OWNER:
        owners = [
            u
            for u in AccountRepository(session).users_of(actor.organization_id)
            if u.role == Role.OWNER and u.disabled_at is None
        ]
        if len(owners) <= 1:
            raise AccountError("an organisation keeps at least one owner")
    before = _user_view(user)
    user.role = role.value
    record_change(
        session,
        actor=user_actor(actor),
        organization_id=actor.organization_id,
        action="user.role_changed",
        entity_type="user",
        entity_id=user.id,
        before=before,
        after=_user_view(user),
    )
    return user
