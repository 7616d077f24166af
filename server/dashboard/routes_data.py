"""The owner's "Your data" page: download everything, delete the organisation (confirmed by the
owner's password and the organisation's typed name, on a page of its own)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from server.accounts import passwords
from server.accounts.roles import Role
from server.api.deps import Images
from server.dashboard.deps import PREFIX, CheckedForm, Db, Viewer, require
from server.dashboard.pages import clear_session_cookie, render
from server.datarights.deletion import delete_organization
from server.datarights.endpoints import export_filename
from server.datarights.export import stream_organization
from server.db.models import Organization

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _org_name(db: Db, who: Viewer) -> str:
    org = db.get(Organization, who.user.organization_id)
    return org.name if org else ""


@router.get("/data")
def data_page(request: Request, db: Db, who: Viewer) -> Response:
    require(who, Role.OWNER)
    return render(request, "data.html", who, org_name=_org_name(db, who))


@router.get("/data/export.zip")
def data_export(request: Request, who: Viewer, store: Images) -> Response:
    require(who, Role.OWNER)
    body = stream_organization(request.app.state.sessions, store, who.user.organization_id)
    return StreamingResponse(
        body,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{export_filename()}"',
            "Cache-Control": "private, no-store",
        },
    )


@router.get("/data/delete")
def delete_page(request: Request, db: Db, who: Viewer) -> Response:
    require(who, Role.OWNER)
    return render(request, "data_delete.html", who, org_name=_org_name(db, who), error=None)


@router.post("/data/delete")
def delete_confirmed(
    request: Request, db: Db, who: Viewer, form: CheckedForm, store: Images
) -> Response:
    require(who, Role.OWNER)
    name = _org_name(db, who)
    error = None
    if not passwords.verify_password(who.user.password_hash, form.get("password", "")):
        error = "that is not your password; nothing was deleted"
    elif form.get("confirm", "").strip() != name:
        error = f"type the organisation's name exactly ({name}); nothing was deleted"
    if error:
        return render(request, "data_delete.html", who, status=400, org_name=name, error=error)
    org_id, user_id = who.user.organization_id, who.user.id
    db.commit()  # the deletion runs in transactions of its own
    delete_organization(
        request.app.state.sessions,
        store,
        org_id,
        requested_by=f"user:{user_id}",
        fleet=request.app.state.fleet,
    )
    response = render(request, "data_deleted.html", None, org_name=name)
    clear_session_cookie(response)
    return response
