"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine

from server.analytics.endpoints import router as analytics_router
from server.api.auth import ApiGuard
from server.api.credentials import CredentialCache
from server.api.errors import install_error_handlers
from server.api.health import router as health_router
from server.api.ratelimit import RateLimiter
from server.api_keys.endpoints import router as api_keys_router
from server.dashboard.pages import install_dashboard
from server.datarights.endpoints import router as datarights_router
from server.db.engine import create_db_engine, session_factory
from server.exports.endpoints import router as exports_router
from server.fleet.endpoints import router as fleet_router
from server.fleet.rollout_endpoints import router as rollout_router
from server.fleet.runtime import FleetRuntime, build_runtime
from server.images.base import ImageStore
from server.images.store import build_image_store
from server.observability.metrics import ApiMetrics, MetricsMiddleware
from server.plans.endpoints import router as plan_router
from server.receipts.endpoints import router as receipts_router
from server.settings import Settings
from server.uploads.endpoints import router as uploads_router
from server.webhooks.endpoints import router as webhooks_router


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    images: ImageStore | None = None,
    fleet: FleetRuntime | None = None,
) -> FastAPI:
    """The API for `settings`; pass `engine`/`images`/`fleet` to share them within a process."""
    app = FastAPI(
        title="Receipt Manager",
        version="1",
        description="Receipts read by the scanners of your organisation.",
    )
    engine = engine or create_db_engine(settings.database_url, pool_size=settings.api.db_pool_size)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    app.state.images = images or build_image_store(settings.image_store)
    app.state.fleet = fleet or build_runtime(settings, app.state.sessions)
    install_error_handlers(app)
    metrics = app.state.metrics = ApiMetrics(engine, app.state.sessions)
    # credentials, read-only scope, rate limits (inside the metrics, which count its 429s)
    app.state.rate_limiter = RateLimiter()
    app.state.credentials = CredentialCache(settings.api.credential_cache_s)
    app.add_middleware(
        ApiGuard,
        settings=settings.rate_limits,
        limiter=app.state.rate_limiter,
        credentials=app.state.credentials,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_route("/metrics", metrics.endpoint, include_in_schema=False)
    app.include_router(health_router)
    app.include_router(receipts_router)
    app.include_router(fleet_router)
    app.include_router(rollout_router)
    app.include_router(exports_router)
    app.include_router(analytics_router)
    app.include_router(api_keys_router)
    app.include_router(plan_router)
    app.include_router(uploads_router)
    app.include_router(webhooks_router)
    app.include_router(datarights_router)
    install_dashboard(app, settings)  # the owner's pages under /app; `/` redirects there
    return app
