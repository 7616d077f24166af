"""Which URLs a webhook may post to: http(s) only, and (SSRF) not into private networks.

`check_url` runs at registration; the worker checks again at each send (`resolve_public`) and
connects to the address it checked, so a name that later resolves to 127.0.0.1 or the cloud
metadata address (DNS rebinding) is refused then too. Private addresses are allowed where
`WebhookSettings.private_allowed` says (development, tests, the demo).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import SplitResult, urlsplit

MAX_URL_LENGTH = 2000


class UrlRefused(ValueError):
    """A URL a webhook may not use; `code` is stable (the API's error code)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _parts(url: str) -> SplitResult:
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused("invalid_url", f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError as exc:
        raise UrlRefused("invalid_url", f"{url!r} is not a URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise UrlRefused(
            "url_scheme_not_allowed",
            f"webhooks are sent over http or https only, not {parts.scheme or 'no scheme'!r}",
        )
    if not parts.hostname:
        raise UrlRefused("invalid_url", f"{url!r} has no host name")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused(
            "url_credentials_not_allowed",
            "put no user name or password in the URL; check the signature instead",
        )
    return parts


def default_port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme.lower() == "https" else 80)


def is_public(address: str) -> bool:
    """True for a globally routable unicast address (not loopback, private, link-local...)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve_public(host: str, port: int) -> list[str]:
    """The addresses of `host`, all of them public; raises `UrlRefused` otherwise."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlRefused("url_unresolvable", f"the host {host!r} does not resolve: {exc}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    private = [a for a in addresses if not is_public(a)]
    if private or not addresses:
        raise UrlRefused(
            "url_not_public",
            f"{host} resolves to {', '.join(private) or 'nothing'}: a loopback, private, "
            "link-local or reserved address; webhooks go to public addresses only",
        )
    return addresses


def check_url(url: str, *, allow_private: bool) -> str:
    """The URL, stripped, if a webhook may post to it; raises `UrlRefused` saying why not."""
    parts = _parts(url)
    if not allow_private:
        resolve_public(parts.hostname or "", default_port(parts))
    return url.strip()
