"""Signatures (what receivers check) and the URL policy (what registration refuses)."""

from __future__ import annotations

import time

import pytest

from server.webhooks.signing import SignatureError, new_secret, sign, verify_signature
from server.webhooks.urls import UrlRefused, check_url, is_public


def test_a_signature_verifies_over_the_exact_body_and_secret():
    secret = new_secret()
    body = b'{"id":"1","type":"receipt.created"}'
    header = sign(secret, body)
    assert verify_signature(secret, body, header) == int(header.split(",")[0][2:])
    with pytest.raises(SignatureError, match="no signature matches"):
        verify_signature(secret, body + b" ", header)
    with pytest.raises(SignatureError, match="no signature matches"):
        verify_signature(new_secret(), body, header)


def test_old_missing_and_malformed_signatures_are_refused():
    secret = new_secret()
    body = b"{}"
    old = sign(secret, body, timestamp=int(time.time()) - 301)
    with pytest.raises(SignatureError, match="away from now"):
        verify_signature(secret, body, old)
    assert verify_signature(secret, body, old, tolerance_s=400)
    for header in (None, "", "v1=abc", "t=1", "t=x,v1=abc"):
        with pytest.raises(SignatureError):
            verify_signature(secret, body, header)


def test_any_of_several_signatures_may_match_during_a_rotation():
    old, new = new_secret(), new_secret()
    body = b"{}"
    t = int(time.time())
    both = f"t={t},v1={sign(old, body, t).split('v1=')[1]},v1={sign(new, body, t).split('v1=')[1]}"
    assert verify_signature(new, body, both) == t
    assert verify_signature(old, body, both) == t


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://example.com/hook", "url_scheme_not_allowed"),
        ("file:///etc/passwd", "url_scheme_not_allowed"),
        ("javascript:alert(1)", "url_scheme_not_allowed"),
        ("example.com/hook", "url_scheme_not_allowed"),
        ("https://user:pw@example.com/hook", "url_credentials_not_allowed"),
        ("https:///nohost", "invalid_url"),
        ("http://example.com:99999/", "invalid_url"),
    ],
)
def test_urls_that_are_not_plain_http_are_refused(url: str, code: str):
    with pytest.raises(UrlRefused) as info:
        check_url(url, allow_private=True)
    assert info.value.code == code


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_private_addresses_are_refused_unless_allowed(url: str):
    with pytest.raises(UrlRefused) as info:
        check_url(url, allow_private=False)
    assert info.value.code == "url_not_public"
    assert check_url(url, allow_private=True) == url


def test_public_addresses_pass():
    assert check_url("https://93.184.216.34/hook", allow_private=False)
    assert is_public("2606:4700::1111")
    assert not is_public("fd00::1")
