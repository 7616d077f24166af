"""The plans of the launch plan and what each includes; the one place that says so.

| plan | receipts a month | analytics | team access | API access, integrations |
|---|---|---|---|---|
| Starter (free) | 50 | basic | no | no |
| Pro | 500 | advanced | no | no |
| Business | unlimited | advanced | yes | no |
| Enterprise | unlimited | advanced | yes | yes |

"API access" means API keys made by the organisation's owners and admins (`server.api_keys`).
Bearer tokens issued by the operator (`receipts admin create-token`) are not gated: they are the
operator's own credentials (tests, the demo, billing, support).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Plan(enum.StrEnum):
    STARTER = "starter"
    PRO = "pro"
    BUSINESS = "business"
    ENTERPRISE = "enterprise"

    @classmethod
    def parse(cls, value: str) -> Plan:
        try:
            return cls(value.strip().lower())
        except ValueError as exc:
            allowed = ", ".join(p.value for p in cls)
            raise ValueError(f"unknown plan {value!r}; choose one of {allowed}") from exc

    @property
    def spec(self) -> PlanSpec:
        return PLANS[self]

    @property
    def label(self) -> str:
        return self.value.capitalize()


@dataclass(frozen=True)
class PlanSpec:
    plan: Plan
    monthly_receipts: int | None  # None: unlimited
    advanced_analytics: bool
    team_access: bool
    api_access: bool
    integrations: bool


PLANS: dict[Plan, PlanSpec] = {
    Plan.STARTER: PlanSpec(Plan.STARTER, 50, False, False, False, False),
    Plan.PRO: PlanSpec(Plan.PRO, 500, True, False, False, False),
    Plan.BUSINESS: PlanSpec(Plan.BUSINESS, None, True, True, False, False),
    Plan.ENTERPRISE: PlanSpec(Plan.ENTERPRISE, None, True, True, True, True),
}

#: The plan new organisations get.
DEFAULT_PLAN = Plan.STARTER


def plan_of(value: str) -> Plan:
    """The plan stored in `organizations.plan`; an unknown value (a newer server's) is Starter,
    the most restrictive, rather than an error on every request."""
    try:
        return Plan(value)
    except ValueError:
        return Plan.STARTER


def least_plan_with_api_access() -> Plan:
    return next(p for p in Plan if PLANS[p].api_access)
