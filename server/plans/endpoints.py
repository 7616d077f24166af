"""HTTP routes of the organisation's plan: `/api/v1/organization/plan`.

``PUT`` is for the organisation's owner, or an operator token with the owner role. In a real
deployment the billing system calls it when a subscription starts, changes or ends (with such a
token), and people never do; until billing exists the owner can. A change releases the receipts
the new plan has room for (`server.plans.quota.change_plan`).
"""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from server.api.deps import CurrentPrincipal, DbSession
from server.api.management import PlanOwner
from server.plans import quota
from server.plans.catalog import Plan, plan_of
from server.plans.repository import PlanRepository

router = APIRouter(prefix="/api/v1/organization", tags=["plan"])

PlanName = Literal["starter", "pro", "business", "enterprise"]


class PlanView(BaseModel):
    plan: PlanName
    monthly_receipts: int | None = Field(description="Quota a month; null: unlimited.")
    used_this_month: int = Field(description="Receipts counted against this month's quota.")
    held: int = Field(description="Receipts stored but held over a quota.")
    advanced_analytics: bool
    team_access: bool
    api_access: bool
    integrations: bool


class PlanChangeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: PlanName


class PlanChanged(PlanView):
    previous: PlanName
    released: int = Field(description="Held receipts released by this change.")


def plan_view(session: Session, plan: Plan, organization_id: uuid.UUID) -> PlanView:
    spec = plan.spec
    return PlanView(
        plan=plan.value,
        monthly_receipts=spec.monthly_receipts,
        used_this_month=quota.usage(session, organization_id),
        held=PlanRepository(session).count_held(organization_id),
        advanced_analytics=spec.advanced_analytics,
        team_access=spec.team_access,
        api_access=spec.api_access,
        integrations=spec.integrations,
    )


@router.get("/plan", response_model=PlanView)
def get_plan(session: DbSession, caller: CurrentPrincipal) -> PlanView:
    plans = PlanRepository(session).plans([caller.organization_id])
    plan = plan_of(plans.get(caller.organization_id, ""))
    return plan_view(session, plan, caller.organization_id)


@router.put("/plan", response_model=PlanChanged)
def change_plan(session: DbSession, caller: PlanOwner, body: PlanChangeBody) -> PlanChanged:
    """Move the organisation to another plan (owner only; billing's call in production)."""
    done = quota.change_plan(session, caller.organization_id, Plan(body.plan), caller.actor)
    current = plan_view(session, done.after, caller.organization_id)
    return PlanChanged(**current.model_dump(), previous=done.before.value, released=done.released)
