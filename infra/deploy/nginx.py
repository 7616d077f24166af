"""nginx configuration for blue-green: an upstream file the deployer rewrites, and a reload.

Production: `/etc/nginx/conf.d/receipts.conf` (from `site_config`) includes the upstream file
(`/etc/nginx/receipts-upstream.conf`); a switch rewrites that file atomically, checks the whole
configuration (`nginx -t`) and reloads (`nginx -s reload`): the master starts workers with the
new upstream and the old workers finish the requests they hold before exiting, so no request
is cut. Tests run a private nginx from `standalone_config` (`nginx -p PREFIX -c CONF`).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

#: The access log format: what the watch and the tests read (status, upstream, timing).
LOG_FORMAT = (
    'log_format receipts \'$time_iso8601 $status $request_method "$request_uri" '
    "$upstream_addr $upstream_status $request_time';"
)


def upstream_block(port: int, host: str = "127.0.0.1") -> str:
    return f"upstream receipts_api {{\n    server {host}:{port};\n    keepalive 16;\n}}\n"


def write_upstream(path: Path, port: int, host: str = "127.0.0.1") -> None:
    """Point the upstream at `host:port`, atomically (nginx never reads half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(upstream_block(port, host))
    os.replace(tmp, path)


def upstream_port(path: Path) -> int | None:
    """The port the upstream file points at now."""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith("server "):
            return int(line.split()[1].rstrip(";").rsplit(":", 1)[1])
    return None


def server_block(listen: str, upstream_file: Path, access_log: Path) -> str:
    """The `server` block proxying to the blue-green upstream."""
    return f"""include {upstream_file};
{LOG_FORMAT}
server {{
    listen {listen};
    access_log {access_log} receipts;
    client_max_body_size 20m;
    location / {{
        proxy_pass http://receipts_api;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Request-ID $request_id;
        proxy_next_upstream error timeout;
    }}
}}
"""


def site_config(
    listen: str = "80",
    upstream_file: Path = Path("/etc/nginx/receipts-upstream.conf"),
    access_log: Path = Path("/var/log/nginx/receipts.access.log"),
) -> str:
    """`/etc/nginx/conf.d/receipts.conf` for Debian's nginx (inside its `http` block)."""
    return server_block(listen, upstream_file, access_log)


def standalone_config(
    prefix: Path, listen_port: int, upstream_file: Path, *, as_root: bool = False
) -> str:
    """A whole nginx.conf for a private nginx under `prefix` (`nginx -p prefix -c conf`)."""
    temp = {name: prefix / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(parents=True, exist_ok=True)
    user = "user root;\n" if as_root else ""
    return f"""{user}worker_processes 1;
daemon off;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} info;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {temp["client_body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
{server_block(f"127.0.0.1:{listen_port}", upstream_file, prefix / "access.log")}
}}
"""


def run_nginx(args: Sequence[str], nginx: Sequence[str]) -> None:
    """Run `nginx ARGS` (e.g. -t, -s reload); raise with nginx's own message if it fails."""
    done = subprocess.run(  # noqa: S603 (the operator's nginx command)
        [*nginx, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join([*nginx, *args])} failed: {done.stderr.strip()}")
