"""Request dependencies of the dashboard: the signed-in user, CSRF checks, scoped repositories.

Tenancy of the dashboard lives here and only here: `Browser` is the receipt repository bound to
the organisation of the signed-in user; `Scanners` (the fleet) and `Hooks` (webhooks) likewise.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from server.accounts import service as accounts
from server.accounts.models import User, WebSession
from server.accounts.roles import Role
from server.accounts.service import AccountKeys
from server.accounts.tokens import anonymous_csrf, new_token, same
from server.analytics.repository import AnalyticsRepository
from server.dashboard.repository import ReceiptBrowser
from server.fleet.repository import FleetRepository
from server.webhooks.repository import WebhookRepository

SESSION_COOKIE = "rm_session"
ANON_COOKIE = "rm_anon"
PREFIX = "/app"


class LoginRequired(Exception):
    """No live session: the handler sends the browser to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageError(Exception):
    """Rendered as an HTML error page with its status and a sentence for a person."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def web_session(request: Request) -> Iterator[Session]:
    """One transaction per request, committed before the response is sent (so the page a
    redirect leads to sees the change)."""
    with request.app.state.sessions() as session, session.begin():
        yield session


Db = Annotated[Session, Depends(web_session, scope="function")]


def account_keys(request: Request) -> AccountKeys:
    keys: AccountKeys = request.app.state.account_keys
    return keys


Keys = Annotated[AccountKeys, Depends(account_keys)]


@dataclass(frozen=True)
class SignedIn:
    user: User
    session: WebSession

    @property
    def role(self) -> Role:
        return Role(self.user.role)

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token


def signed_in(request: Request, db: Db) -> SignedIn:
    token = request.cookies.get(SESSION_COOKIE)
    found = accounts.session_user(db, token) if token else None
    if found is None:
        path = request.url.path
        if request.url.query:
            path += "?" + request.url.query
        raise LoginRequired(path if request.method == "GET" else PREFIX + "/receipts")
    return SignedIn(user=found[1], session=found[0])


Viewer = Annotated[SignedIn, Depends(signed_in)]


async def form_data(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


Form = Annotated[dict[str, str], Depends(form_data)]


def checked_form(who: Viewer, form: Form) -> dict[str, str]:
    """The posted form of a signed-in user, refused unless it carries the session's CSRF token."""
    if not same(form.get("csrf_token"), who.csrf_token):
        raise PageError(403, "this form has expired or came from another site; reload the page")
    return form


CheckedForm = Annotated[dict[str, str], Depends(checked_form)]


def browser_token(request: Request) -> str:
    """The random token of a browser not signed in (set as the `rm_anon` cookie)."""
    return request.cookies.get(ANON_COOKIE) or new_token()


def anonymous_form(request: Request, keys: Keys, form: Form) -> dict[str, str]:
    """A posted form of a browser not signed in (login, invitation, reset), CSRF-checked."""
    anon = request.cookies.get(ANON_COOKIE)
    expected = anonymous_csrf(keys.secret_key, anon) if anon else None
    if not same(form.get("csrf_token"), expected):
        raise PageError(403, "this form has expired; reload the page and try again")
    return form


AnonymousForm = Annotated[dict[str, str], Depends(anonymous_form)]


def require(who: SignedIn, role: Role) -> None:
    if not who.role.at_least(role):
        raise PageError(403, f"this needs the {role.value} role or higher; you are {who.role}")


def receipt_browser(db: Db, who: Viewer) -> ReceiptBrowser:
    return ReceiptBrowser(db, who.user.organization_id)


Browser = Annotated[ReceiptBrowser, Depends(receipt_browser)]


def analytics_repository(db: Db, who: Viewer) -> AnalyticsRepository:
    return AnalyticsRepository(db, who.user.organization_id)


Analytics = Annotated[AnalyticsRepository, Depends(analytics_repository)]


def fleet_repository(db: Db, who: Viewer) -> FleetRepository:
    return FleetRepository(db, who.user.organization_id)


Scanners = Annotated[FleetRepository, Depends(fleet_repository)]


def webhook_repository(db: Db, who: Viewer) -> WebhookRepository:
    return WebhookRepository(db, who.user.organization_id)


Hooks = Annotated[WebhookRepository, Depends(webhook_repository)]
