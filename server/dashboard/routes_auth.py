"""Sign-in, sign-out, accepting an invitation and resetting a password."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from server.accounts import service as accounts
from server.accounts.service import AccountError
from server.dashboard.deps import PREFIX, SESSION_COOKIE, AnonymousForm, CheckedForm, Db, Keys
from server.dashboard.pages import (
    clear_session_cookie,
    redirect,
    render_anonymous,
    safe_next,
    set_session_cookie,
)

logger = logging.getLogger(__name__)
router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/login")
def login_page(
    request: Request, next_path: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    return render_anonymous(request, "login.html", next=safe_next(next_path), email="")


@router.post("/login")
def login(request: Request, db: Db, keys: Keys, form: AnonymousForm) -> Response:
    email = form.get("email", "")
    user = accounts.authenticate(db, email, form.get("password", ""))
    if user is None:
        logger.info("failed sign-in for %r", email[:100])
        return render_anonymous(
            request,
            "login.html",
            status=400,
            next=safe_next(form.get("next")),
            email=email,
            error="Wrong e-mail or password.",
        )
    started = accounts.start_session(db, user, keys, request.headers.get("user-agent", ""))
    response = redirect(safe_next(form.get("next")))
    set_session_cookie(request, response, started.token)
    logger.info("user %s signed in", user.id)
    return response


@router.post("/logout")
def logout(request: Request, db: Db, _form: CheckedForm) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        accounts.end_session(db, token)
    response = redirect(PREFIX + "/login")
    clear_session_cookie(response)
    return response


@router.get("/invitations/{token}")
def invitation_page(request: Request, db: Db, keys: Keys, token: str) -> Response:
    try:
        invitation = accounts.open_invitation(db, token, keys)
    except AccountError as exc:
        return render_anonymous(request, "error.html", status=400, message=str(exc))
    return render_anonymous(request, "invitation.html", invitation=invitation, token=token)


@router.post("/invitations/{token}")
def accept_invitation(
    request: Request, db: Db, keys: Keys, token: str, form: AnonymousForm
) -> Response:
    try:
        invitation = accounts.open_invitation(db, token, keys)
    except AccountError as exc:
        return render_anonymous(request, "error.html", status=400, message=str(exc))
    if form.get("password") != form.get("password2"):
        return render_anonymous(
            request,
            "invitation.html",
            status=400,
            invitation=invitation,
            token=token,
            error="The two passwords differ.",
        )
    try:
        with db.begin_nested():
            user = accounts.accept_invitation(
                db, token, form.get("name", ""), form.get("password", ""), keys
            )
    except AccountError as exc:
        return render_anonymous(
            request, "invitation.html", status=400, invitation=invitation, token=token, error=exc
        )
    started = accounts.start_session(db, user, keys, request.headers.get("user-agent", ""))
    response = redirect(PREFIX + "/receipts")
    set_session_cookie(request, response, started.token)
    return response


@router.get("/reset/{token}")
def reset_page(request: Request, db: Db, keys: Keys, token: str) -> Response:
    try:
        accounts.open_password_reset(db, token, keys)
    except AccountError as exc:
        return render_anonymous(request, "error.html", status=400, message=str(exc))
    return render_anonymous(request, "reset.html", token=token)


@router.post("/reset/{token}")
def reset(request: Request, db: Db, keys: Keys, token: str, form: AnonymousForm) -> Response:
    if form.get("password") != form.get("password2"):
        return render_anonymous(
            request, "reset.html", status=400, token=token, error="The two passwords differ."
        )
    try:
        with db.begin_nested():
            accounts.reset_password(db, token, form.get("password", ""), keys)
    except AccountError as exc:
        return render_anonymous(request, "reset.html", status=400, token=token, error=exc)
    return render_anonymous(
        request,
        "login.html",
        next=PREFIX + "/receipts",
        email="",
        notice="Your password is set; sign in with it.",
    )
