"""A user or key of one organisation can read or change nothing of another's, on every endpoint.

The operations come from the app itself: every operation of `app.openapi()` and every route of
the dashboard under /app, so a new endpoint is covered the day it is added. Organisation A
(Acme) calls each one with each of its credentials: an API key (read-write and read), an
operator token (owner) and a signed-in owner's dashboard session with its CSRF token.

The rule, for an operation whose path names an object (``{receipt_id}``, ``{device_id}``...):
- filled with organisation B's (Globex's) real ids, every answer is a refusal: 404, or the
  401/403 of a credential that may not use the operation at all (a read key's write, a role
  too low, a session on a bearer-only route, a signed link) -- never 2xx, never 409/422;
- the answer is the same (status and error code) as for ids that exist nowhere: B's objects
  are indistinguishable from missing ones, so there is no oracle;
- at least one of A's credentials gets the 404 (the lookup is really reached), unless the
  operation is in `NO_LOOKUP` with its reason;
- for nested paths, A's own parent with B's child (and the reverse) is refused the same way.
For an operation without ids (lists, exports, creations), any answer is allowed but none may
contain anything of B (ids, names, its device ids; ZIP members are opened), even when the query
names B's scanner (``?device=``). After every operation, every row B owns in every table, and
every file of the image store, is unchanged.

A path parameter without a value in `world.Org.ids` fails its test: add the fixture.
"""

from __future__ import annotations

import io
import itertools
import re
import uuid
import zipfile
from typing import Any

import pytest
from fastapi.routing import APIRoute
from pydantic import SecretStr

from server.api.app import create_app
from server.settings import Settings
from tests.server.dashboard.seed import PASSWORD
from tests.server.isolation.world import Org, World, image_files, restore_plan, snapshot

# --------------------------------------------------------------------------- what is tested


def _app_for_listing() -> Any:
    settings = Settings(database_url="sqlite:///:memory:", secret_key=SecretStr("l" * 40))
    return create_app(settings)


_APP = _app_for_listing()
OPENAPI: dict[str, Any] = _APP.openapi()
HTTP_METHODS = ("get", "put", "post", "patch", "delete")

API_OPERATIONS = [
    (method.upper(), path, op)
    for path, ops in OPENAPI["paths"].items()
    for method, op in ops.items()
    if method in HTTP_METHODS
]


def _walk(routes: Any, prefix: str = "") -> Any:
    for r in routes:
        if hasattr(r, "original_router"):  # FastAPI's included routers
            yield from _walk(r.original_router.routes, prefix + r.include_context.prefix)
        else:
            yield prefix, r


DASHBOARD_ROUTES = sorted(
    (method, prefix + r.path)
    for prefix, r in _walk(_APP.router.routes)
    if isinstance(r, APIRoute) and (prefix + r.path).startswith("/app")
    for method in r.methods
)

#: Operations with ids whose refusal comes before any lookup, so no credential gets a 404.
NO_LOOKUP = {
    "GET /api/v1/fleet/releases/{release_id}/artifact": (
        "a scanner's signed, expiring link (no credential): any other link is 403 bad_link"
    ),
}
#: Dashboard routes whose path holds a capability, not an object id: whoever holds the signed
#: link may open it (that is what it is for); it names no organisation's object to guess.
CAPABILITY_ROUTES = {
    ("GET", "/app/invitations/{token}"): "signed invitation link",
    ("POST", "/app/invitations/{token}"): "signed invitation link",
    ("GET", "/app/reset/{token}"): "signed password-reset link",
    ("POST", "/app/reset/{token}"): "signed password-reset link",
}
#: Query parameters that name an object, filled with B's id in operations without path ids.
QUERY_IDS = {"device": "device_id"}
#: Refusals a credential may get whatever the id (its kind, role or scope does not allow it).
REFUSALS = {401, 403, 404}

PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")


def _params(path: str) -> list[str]:
    return PARAM.findall(path)


# --------------------------------------------------------------------------- filling requests


def _ids_for(path: str, org: Org) -> dict[str, str]:
    missing = [p for p in _params(path) if p not in org.ids]
    if missing:
        pytest.fail(
            f"{path}: no fixture id for path parameter(s) {missing}; add one of each to "
            "tests/server/isolation/world.py (populate: Org.ids) so this endpoint is tried "
            "with another organisation's ids"
        )
    return {p: org.ids[p] for p in _params(path)}


def _nowhere(value: str) -> str:
    """An id of the same form as `value` that exists in no organisation."""
    try:
        uuid.UUID(value)
    except ValueError:
        return f"nobody-{uuid.uuid4().hex[:12]}"
    return str(uuid.uuid4())


def _fill(path: str, values: dict[str, str]) -> str:
    return PARAM.sub(lambda m: values[m.group(1)], path)


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = OPENAPI["components"]["schemas"][name]
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return _resolve(options[0]) if options else {"type": "null"}
    return schema


def _sample(schema: dict[str, Any], name: str, ids: dict[str, str]) -> Any:
    """A small valid value of `schema`; fields named like an object id get B's id."""
    schema = _resolve(schema)
    if name in ids:
        return ids[name]
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object":
        return {
            key: _sample(sub, key, ids)
            for key, sub in schema.get("properties", {}).items()
            if key in schema.get("required", []) or key in ids
        }
    if kind == "array":
        count = max(1, schema.get("minItems", 0)) if "items" in schema else 0
        return [_sample(schema["items"], name, ids) for _ in range(count)]
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1)
    if kind == "number":
        return max(float(schema.get("minimum", 1)), 1.0)
    if kind == "boolean":
        return True
    return "x" * max(1, int(schema.get("minLength", 1)))


def _is_file(schema: dict[str, Any]) -> bool:
    schema = _resolve(schema)
    if schema.get("type") == "array":
        return _is_file(schema["items"])
    return schema.get("format") == "binary" or "contentMediaType" in schema


def _request(op: dict[str, Any], ids: dict[str, str], query_ids: bool) -> dict[str, Any]:
    """httpx keyword arguments: required query parameters, and a body built from the schema."""
    params: dict[str, Any] = {}
    for p in op.get("parameters", []):
        if p["in"] != "query":
            continue
        if query_ids and p["name"] in QUERY_IDS:
            params[p["name"]] = ids[QUERY_IDS[p["name"]]]
        elif p.get("required"):
            params[p["name"]] = _sample(p["schema"], p["name"], {})
    out: dict[str, Any] = {"params": params}
    body = op.get("requestBody")
    if body is None:
        return out
    content = body["content"]
    if "application/json" in content:
        out["json"] = _sample(content["application/json"]["schema"], "", ids)
    elif "multipart/form-data" in content:
        schema = _resolve(content["multipart/form-data"]["schema"])
        files, data = [], {}
        for key, sub in schema.get("properties", {}).items():
            if _is_file(sub):
                files.append((key, (f"{key}.bin", b"x", "application/octet-stream")))
            elif key in schema.get("required", []):
                data[key] = str(_sample(sub, key, ids))
        out["files"], out["data"] = files, data
    else:
        pytest.fail(f"no sample body for content types {sorted(content)}: teach _request")
    return out


# --------------------------------------------------------------------------- checking answers


def _error_code(r: Any) -> str:
    try:
        body = r.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return str(err.get("code", ""))
        return str(body.get("code", ""))
    return ""


def _texts(r: Any) -> list[str]:
    """The answer's text, with the members of a ZIP opened."""
    data = r.content
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return [zf.read(n).decode("utf-8", "replace") for n in zf.namelist()] + zf.namelist()
    return [data.decode("utf-8", "replace")]


def assert_nothing_of(r: Any, other: Org, sent: set[str], what: str) -> None:
    for text in _texts(r):
        low = text.lower()
        for echoed in sent:  # what the caller sent may come back (a search box); nothing else
            low = low.replace(echoed.lower(), "")
        leaked = sorted(m for m in other.markers if m.lower() in low)
        assert not leaked, f"{what} answered {r.status_code} with {other.name}'s data: {leaked}"


def assert_untouched(world: World, before: Any, files: dict[str, str], what: str) -> None:
    after = snapshot(world.db, world.b.org_id)
    changed = sorted(t for t in before if before[t] != after.get(t))
    assert not changed, f"{what} changed {world.b.name}'s rows in {changed}"
    now = image_files(world.store)
    gone = sorted(k for k, v in files.items() if now.get(k) != v)
    assert not gone, f"{what} removed or changed image files {gone}"


@pytest.fixture(scope="module")
def baseline(world: World) -> tuple[Any, dict[str, str]]:
    return snapshot(world.db, world.b.org_id), image_files(world.store)


def _call(world: World, method: str, url: str, headers: dict[str, str], kw: dict[str, Any]) -> Any:
    world.client.cookies.clear()
    r = world.client.request(method, url, headers=headers, follow_redirects=False, **kw)
    world.client.cookies.clear()
    return r


# --------------------------------------------------------------------------- the API


@pytest.mark.parametrize(
    ("method", "path", "op"),
    API_OPERATIONS,
    ids=[f"{m} {p}" for m, p, _ in API_OPERATIONS],
)
def test_api_operation_reaches_nothing_of_another_organisation(
    world: World, baseline: Any, method: str, path: str, op: dict[str, Any]
) -> None:
    a, b = world.a, world.b
    what = f"{method} {path}"
    names = _params(path)
    b_ids = _ids_for(path, b)
    _ids_for(path, a)
    sent = set(b_ids.values())
    try:
        if not names:
            for label, headers in a.api_headers.items():
                kw = _request(op, b.ids, query_ids=True)
                r = _call(world, method, path, headers, kw)
                sent_here = sent | {v for v in b.ids.values() if v in repr(kw)}
                assert_nothing_of(r, b, sent_here, f"{what} with A's {label}")
            return
        # every mix of the two organisations' ids in which at least one is B's
        mixes = [
            dict(zip(names, choice, strict=True))
            for choice in itertools.product(
                *[(b_ids[n], a.ids[n]) if len(names) > 1 else (b_ids[n],) for n in names]
            )
            if any(choice[i] == b_ids[n] for i, n in enumerate(names))
        ]
        found_404 = False
        for values, (label, headers) in itertools.product(mixes, a.api_headers.items()):
            kw = _request(op, b.ids, query_ids=False)
            nowhere = {n: (_nowhere(v) if v == b_ids[n] else v) for n, v in values.items()}
            r = _call(world, method, _fill(path, values), headers, kw)
            control = _call(world, method, _fill(path, nowhere), headers, kw)
            who = f"{what} with A's {label} and ids {values}"
            assert not 200 <= r.status_code < 300, f"{who}: {r.status_code} {r.text[:300]}"
            assert r.status_code in REFUSALS, f"{who}: {r.status_code} {r.text[:300]}"
            assert (r.status_code, _error_code(r)) == (control.status_code, _error_code(control)), (
                f"{who}: answered {r.status_code} {_error_code(r)!r} but "
                f"{control.status_code} {_error_code(control)!r} for ids that exist nowhere "
                "(an oracle: B's objects must look missing)"
            )
            assert_nothing_of(r, b, set(values.values()), who)
            found_404 = found_404 or r.status_code == 404
        if what not in NO_LOOKUP:
            assert found_404, (
                f"{what}: none of A's credentials got 404 for B's ids, so the lookup was never "
                "tried; give the world a credential that may use it, or add it to NO_LOOKUP "
                "with the reason"
            )
    finally:
        restore_plan(world.db, a)
    assert_untouched(world, *baseline, what)


def test_no_lookup_exemptions_name_existing_operations() -> None:
    known = {f"{m} {p}" for m, p, _ in API_OPERATIONS}
    assert set(NO_LOOKUP) <= known, set(NO_LOOKUP) - known


# --------------------------------------------------------------------------- the dashboard


def _form(world: World, device_id: str) -> dict[str, str]:
    """Every field a dashboard form may want: the device id of the path typed as confirmation,
    a command, a role, a password (A's own), a correction."""
    return {
        "csrf_token": world.a.owner_csrf,
        "confirm": device_id,
        "name": "reboot",
        "role": "viewer",
        "active": "0",
        "password": PASSWORD,
        "f_total": "1.00",
    }


@pytest.mark.parametrize(
    ("method", "path"), DASHBOARD_ROUTES, ids=[f"{m} {p}" for m, p in DASHBOARD_ROUTES]
)
def test_dashboard_route_reaches_nothing_of_another_organisation(
    world: World, baseline: Any, method: str, path: str
) -> None:
    a, b = world.a, world.b
    what = f"{method} {path}"
    session = {"Cookie": f"rm_session={a.owner_cookie}"}
    names = _params(path)
    if (method, path) in CAPABILITY_ROUTES:
        assert names == ["token"], f"{what}: a capability route takes only its token"
        return  # the signed token is the permission; there is no object id to swap
    if not names:
        if method != "GET":
            return  # acts on the signed-in user's own organisation: no id to swap in
        params = {"device": b.ids["device_id"]} if path.startswith("/app/") else {}
        r = _call(world, method, path, session, {"params": params})
        assert_nothing_of(r, b, set(params.values()), f"{what} as A's owner")
        assert_untouched(world, *baseline, what)
        return
    b_ids = _ids_for(path, b)
    nowhere = {n: _nowhere(v) for n, v in b_ids.items()}

    def form(values: dict[str, str]) -> dict[str, Any]:
        return {"data": _form(world, values.get("device_id", ""))} if method == "POST" else {}

    r = _call(world, method, _fill(path, b_ids), session, form(b_ids))
    control = _call(world, method, _fill(path, nowhere), session, form(nowhere))
    who = f"{what} with B's ids {b_ids}"
    assert r.status_code == 404, f"{who}: {r.status_code} (want 404) {r.text[:300]}"
    assert control.status_code == r.status_code, f"{who}: {control.status_code} for missing ids"
    assert_nothing_of(r, b, set(b_ids.values()), who)
    restore_plan(world.db, a)
    assert_untouched(world, *baseline, what)


def test_capability_exemptions_name_existing_routes() -> None:
    assert set(CAPABILITY_ROUTES) <= set(DASHBOARD_ROUTES), set(CAPABILITY_ROUTES) - set(
        DASHBOARD_ROUTES
    )
