"""The team page: users and their roles, invitations by link, password-reset links."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import Response

from server.accounts import service as accounts
from server.accounts.repository import AccountRepository
from server.accounts.roles import MANAGE_USERS, Role
from server.accounts.service import AccountError, user_actor
from server.dashboard.deps import PREFIX, CheckedForm, Db, Keys, PageError, Viewer, require
from server.dashboard.pages import render
from server.db.base import utcnow

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _team_page(
    request: Request,
    db: Db,
    who: Viewer,
    *,
    status: int = 200,
    error: str | None = None,
    link: str | None = None,
    link_label: str | None = None,
) -> Response:
    repo = AccountRepository(db)
    return render(
        request,
        "team.html",
        who,
        status=status,
        users=repo.users_of(who.user.organization_id),
        invitations=repo.open_invitations(who.user.organization_id, utcnow()),
        roles=[r.value for r in Role],
        can_manage=who.role.at_least(MANAGE_USERS),
        error=error,
        link=link,
        link_label=link_label,
    )


@router.get("/team")
def team(request: Request, db: Db, who: Viewer) -> Response:
    return _team_page(request, db, who)


def _absolute(request: Request, path: str) -> str:
    return str(request.base_url).rstrip("/") + path


@router.post("/team/invite")
def invite(request: Request, db: Db, who: Viewer, keys: Keys, form: CheckedForm) -> Response:
    require(who, MANAGE_USERS)
    try:
        role = Role.parse(form.get("role", ""))
        with db.begin_nested():
            invitation, token = accounts.invite(db, who.user, form.get("email", ""), role, keys)
    except (AccountError, ValueError) as exc:
        return _team_page(request, db, who, status=400, error=str(exc))
    link = _absolute(request, f"{PREFIX}/invitations/{token}")
    return _team_page(request, db, who, link=link, link_label=f"Invitation for {invitation.email}")


@router.post("/team/users/{user_id}/role")
def change_role(
    request: Request, db: Db, who: Viewer, form: CheckedForm, user_id: uuid.UUID
) -> Response:
    require(who, MANAGE_USERS)
    try:
        accounts.team_member(db, who.user, user_id)
    except AccountError as exc:  # another organisation's user looks like no user: 404
        raise PageError(404, str(exc)) from exc
    try:
        with db.begin_nested():
            accounts.change_role(db, who.user, user_id, Role.parse(form.get("role", "")))
    except (AccountError, ValueError) as exc:
        return _team_page(request, db, who, status=400, error=str(exc))
    return _team_page(request, db, who)


@router.post("/team/users/{user_id}/reset")
def reset_link(
    request: Request, *, db: Db, who: Viewer, keys: Keys, form: CheckedForm, user_id: uuid.UUID
) -> Response:
    require(who, MANAGE_USERS)
    del form  # checked for CSRF; nothing else in it
    try:
        user = accounts.team_member(db, who.user, user_id)
    except AccountError as exc:
        raise PageError(404, str(exc)) from exc
    token = accounts.issue_password_reset(db, user, user_actor(who.user), keys)
    link = _absolute(request, f"{PREFIX}/reset/{token}")
    return _team_page(request, db, who, link=link, link_label=f"Password reset for {user.email}")
