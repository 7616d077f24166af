"""Rendering of dashboard pages, and `install_dashboard`, which adds the dashboard to an app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.routing import Match, Route
from starlette.types import Scope

from server.accounts.service import AccountKeys
from server.accounts.tokens import anonymous_csrf
from server.dashboard.deps import (
    ANON_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    LoginRequired,
    PageError,
    SignedIn,
    browser_token,
)
from server.settings import Settings

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


def render(
    request: Request, name: str, who: SignedIn | None = None, status: int = 200, **context: Any
) -> HTMLResponse:
    """Page `name` with the signed-in user (its CSRF token goes into every form)."""
    context.setdefault("who", who)
    context.setdefault("prefix", PREFIX)
    context.setdefault("csrf_token", who.csrf_token if who else "")
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def render_anonymous(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    """A page for a browser not signed in: its forms carry a token bound to the `rm_anon` cookie."""
    keys: AccountKeys = request.app.state.account_keys
    anon = browser_token(request)
    response = render(
        request, name, status=status, csrf_token=anonymous_csrf(keys.secret_key, anon), **context
    )
    if request.cookies.get(ANON_COOKIE) != anon:
        response.set_cookie(
            ANON_COOKIE, anon, httponly=True, samesite="lax", secure=_secure(request), path=PREFIX
        )
    return response


def _secure(request: Request) -> bool:
    keys: AccountKeys = request.app.state.account_keys
    return keys.config.cookie_secure == "always" or request.url.scheme == "https"


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    keys: AccountKeys = request.app.state.account_keys
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(keys.config.session_hours * 3600),
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: only a path of the dashboard (no open redirect)."""
    if target and target.startswith(PREFIX + "/") and "//" not in target and "\\" not in target:
        return target
    return PREFIX + "/receipts"


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


class _RootRedirect(Route):
    """`/` leads to the dashboard, unless the app serves `/` itself with a route added later
    (the demo's own page does, for now)."""

    def __init__(self, app: FastAPI) -> None:
        super().__init__("/", self._redirect, include_in_schema=False)
        self._app = app

    @staticmethod
    async def _redirect(_request: Request) -> Response:
        return RedirectResponse(PREFIX + "/receipts", status_code=307)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is Match.FULL and any(
            r is not self and getattr(r, "path", None) == "/" for r in self._app.router.routes
        ):
            return Match.NONE, {}
        return match, child


def install_dashboard(app: FastAPI, settings: Settings) -> None:
    """Serve the dashboard under /app (and send `/` there); raises if no secret key is usable."""
    from server.dashboard.routes_analytics import router as analytics_router
    from server.dashboard.routes_auth import router as auth_router
    from server.dashboard.routes_data import router as data_router
    from server.dashboard.routes_devices import router as devices_router
    from server.dashboard.routes_duplicates import router as duplicates_router
    from server.dashboard.routes_export import router as export_router
    from server.dashboard.routes_receipts import router as receipts_router
    from server.dashboard.routes_settings import router as settings_router
    from server.dashboard.routes_team import router as team_router
    from server.dashboard.routes_uploads import router as uploads_router
    from server.dashboard.routes_webhooks import router as webhooks_router

    app.state.account_keys = AccountKeys.from_settings(settings)
    app.include_router(auth_router)
    app.include_router(receipts_router)
    app.include_router(team_router)
    app.include_router(settings_router)
    app.include_router(data_router)
    app.include_router(analytics_router)
    app.include_router(uploads_router)
    app.include_router(duplicates_router)
    app.include_router(devices_router)
    app.include_router(webhooks_router)
    app.include_router(export_router)
    app.mount(PREFIX + "/static", StaticFiles(directory=HERE / "static"), name="dashboard-static")

    app.router.routes.append(_RootRedirect(app))

    @app.exception_handler(LoginRequired)
    async def _login(_r: Request, exc: LoginRequired) -> Response:
        from urllib.parse import quote

        return redirect(f"{PREFIX}/login?next={quote(exc.next_path, safe='')}")

    @app.exception_handler(PageError)
    async def _page_error(request: Request, exc: PageError) -> Response:
        return render(request, "error.html", status=exc.status, message=exc.message)
