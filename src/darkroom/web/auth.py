"""Who is looking at a page: the API token in an http-only cookie, and CSRF for the forms.

The CSRF token is an HMAC of the session's own token, so it needs no server-side state and a
page from another site, which cannot read the cookie, cannot compute it. Every unsafe request
under the pages' router must carry it, as a `csrf_token` form field or an `X-CSRF-Token` header
(htmx sends the header, set once on `<body>`). Sign-in is the exception: it has no session yet.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Request

from darkroom.domain.accounts import Principal, authenticate
from darkroom.errors import Forbidden, Unauthorized
from darkroom.http.deps import READ_METHODS, SessionDep

__all__ = [
    "COOKIE",
    "SignInRequired",
    "UserDep",
    "check_csrf",
    "csrf_token",
    "current_principal",
    "sign",
    "signed_by_session",
]

COOKIE = "darkroom_token"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
CSRF_EXEMPT = ("/login",)


class SignInRequired(Exception):
    """Raised by pages without a valid session; answered with a redirect to the sign-in page."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


def current_principal(request: Request, session: SessionDep) -> Principal:
    try:
        principal = authenticate(session, request.cookies.get(COOKIE))
    except Unauthorized:
        raise SignInRequired(str(request.url.path)) from None
    if principal.is_run or principal.is_deployment:
        raise SignInRequired(str(request.url.path))
    return principal


UserDep = Annotated[Principal, Depends(current_principal)]


def csrf_token(session_token: str | None) -> str:
    if not session_token:
        return ""
    return hmac.new(session_token.encode(), b"darkroom-csrf", hashlib.sha256).hexdigest()


def sign(request: Request, value: str) -> str:
    """An HMAC of `value` under the session's token: a page vouches for a value it sent the
    browser (a stored upload's sha256) when the browser sends it back."""
    token = request.cookies.get(COOKIE) or ""
    return hmac.new(token.encode(), b"darkroom-value:" + value.encode(), hashlib.sha256).hexdigest()


def signed_by_session(request: Request, value: str, signature: str) -> bool:
    return bool(request.cookies.get(COOKIE)) and hmac.compare_digest(
        sign(request, value), signature
    )


async def check_csrf(request: Request) -> None:
    if request.method in READ_METHODS or request.url.path in CSRF_EXEMPT:
        return
    sent = request.headers.get(CSRF_HEADER)
    form = None
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        sent = str(form.get(CSRF_FIELD) or "")
    expected = csrf_token(request.cookies.get(COOKIE))
    if not sent or not expected or not hmac.compare_digest(sent, expected):
        if form is not None:
            await form.close()  # no route will: its uploaded files would linger until collected
        raise Forbidden(
            "this form did not come from a darkroom page of this session: reload the page and "
            "try again",
            code="csrf_failed",
        )
