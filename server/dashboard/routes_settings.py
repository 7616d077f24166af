"""The settings page: the organisation's plan and usage, and its API keys.

Everyone signed in sees the plan. Owners and admins make and revoke API keys here (the same
service as ``/api/v1/api-keys``; the secret is shown once, on the page that made it). Owners
may change the plan here until billing does it through ``PUT /api/v1/organization/plan``.
Every form carries the session's CSRF token.
"""

from __future__ import annotations

import datetime as dt
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import Response

from server.accounts.roles import MANAGE_USERS, Role
from server.accounts.service import user_actor
from server.api.errors import ApiError
from server.api_keys import service as api_keys
from server.dashboard.deps import PREFIX, CheckedForm, Db, PageError, Viewer, require
from server.dashboard.pages import redirect, render
from server.db.base import utcnow
from server.plans import quota
from server.plans.catalog import PLANS, Plan, plan_of
from server.plans.repository import PlanRepository

router = APIRouter(prefix=PREFIX, include_in_schema=False)

#: Expiry choices of the form, in days (0: never).
EXPIRY_DAYS = (0, 30, 90, 365)


def _plan(db: Db, who: Viewer) -> Plan:
    org_id = who.user.organization_id
    return plan_of(PlanRepository(db).plans([org_id]).get(org_id, ""))


def _page(
    request: Request,
    db: Db,
    who: Viewer,
    *,
    status: int = 200,
    error: str | None = None,
    secret: str | None = None,
    notice: str | None = None,
) -> Response:
    org_id = who.user.organization_id
    plan = _plan(db, who)
    can_manage = who.role.at_least(MANAGE_USERS)
    keys = api_keys.list_keys(db, org_id) if can_manage else []
    now = utcnow()
    return render(
        request,
        "settings.html",
        who,
        status=status,
        plan=plan,
        plans=list(PLANS.values()),
        used=quota.usage(db, org_id),
        held=PlanRepository(db).count_held(org_id),
        keys=[(k, api_keys.status_of(k, now)) for k in keys],
        can_manage=can_manage,
        is_owner=who.role.at_least(Role.OWNER),
        expiry_days=EXPIRY_DAYS,
        error=error,
        secret=secret,
        notice=notice,
    )


@router.get("/settings")
def settings_page(request: Request, db: Db, who: Viewer) -> Response:
    return _page(request, db, who)


@router.post("/settings/api-keys")
def create_key(request: Request, db: Db, who: Viewer, form: CheckedForm) -> Response:
    require(who, MANAGE_USERS)
    try:
        days = int(form.get("expires_days", "0") or 0)
    except ValueError:
        days = -1
    if days not in EXPIRY_DAYS:
        return _page(request, db, who, status=400, error="choose an expiry from the list")
    expires = utcnow() + dt.timedelta(days=days) if days else None
    try:
        with db.begin_nested():
            new = api_keys.create_key(
                db,
                organization_id=who.user.organization_id,
                plan=_plan(db, who),
                name=form.get("name", ""),
                scope=form.get("scope", ""),
                expires_at=expires,
                actor=user_actor(who.user),
            )
    except ApiError as exc:
        return _page(request, db, who, status=exc.status, error=exc.message)
    return _page(request, db, who, status=201, secret=new.secret)


@router.post("/settings/api-keys/{key_id}/revoke")
def revoke_key(db: Db, who: Viewer, form: CheckedForm, key_id: uuid.UUID) -> Response:
    require(who, MANAGE_USERS)
    del form  # checked for CSRF; nothing else in it
    try:
        api_keys.revoke_key(db, who.user.organization_id, key_id, user_actor(who.user))
    except ApiError as exc:
        raise PageError(exc.status, exc.message) from exc
    return redirect(f"{PREFIX}/settings?revoked=1")


@router.post("/settings/plan")
def change_plan(request: Request, db: Db, who: Viewer, form: CheckedForm) -> Response:
    require(who, Role.OWNER)
    try:
        plan = Plan.parse(form.get("plan", ""))
    except ValueError as exc:
        return _page(request, db, who, status=400, error=str(exc))
    done = quota.change_plan(db, who.user.organization_id, plan, user_actor(who.user))
    note = f"Now on {done.after.label}."
    if done.released:
        note += f" {done.released} held receipts released."
    return _page(request, db, who, notice=note)
