"""Settings of accounts and web sessions (`RM_ACCOUNTS__*`), and the server's secret key."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

#: Used only with RM_ENVIRONMENT=development when RM_SECRET_KEY is unset.
DEVELOPMENT_SECRET = "development-only-secret-key-not-for-production"  # noqa: S105


class AccountsSettings(BaseModel):
    """Sessions, invitations and password resets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    session_hours: float = Field(
        default=24 * 14, gt=0, description="How long a sign-in lasts before it expires."
    )
    invitation_hours: float = Field(
        default=24 * 7, gt=0, description="How long an invitation link can be used."
    )
    reset_minutes: float = Field(
        default=60, gt=0, description="How long a password-reset link can be used."
    )
    cookie_secure: Literal["auto", "always"] = Field(
        default="auto",
        description='"auto": the session cookie is Secure when the request came over HTTPS; '
        '"always": always Secure (behind a TLS-terminating proxy).',
    )


class SecretKeyError(ValueError):
    """The server has no usable secret key for signing links."""


def secret_key_value(secret: SecretStr | None, environment: str) -> str:
    """The key that signs invitation and reset links; refuses a missing one outside development."""
    if secret is not None:
        return secret.get_secret_value()
    if environment == "development":
        return DEVELOPMENT_SECRET
    raise SecretKeyError(
        "RM_SECRET_KEY is not set; set it to a long random string, e.g. the output of "
        "'python -c \"import secrets; print(secrets.token_urlsafe(48))\"'"
    )
