"""The web UI's pages. Thin like the API routes: read through `darkroom.domain`, render Jinja2.

Each area has its module (versions and assets, jobs and runs, the Process flow, the catalog of
processings and models); this one signs people in and out and gathers the routers.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from darkroom.domain.accounts import authenticate
from darkroom.errors import Unauthorized
from darkroom.http.deps import SessionDep
from darkroom.web import (
    catalog,
    deployment_pages,
    job_pages,
    model_upload,
    pipeline_pages,
    process,
    version_pages,
)
from darkroom.web.auth import COOKIE, SignInRequired, check_csrf
from darkroom.web.render import page, templates

__all__ = ["SignInRequired", "router", "templates"]

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])


@router.get("/", response_class=HTMLResponse)
def home() -> Response:
    return RedirectResponse("/datasets", status_code=303)


def _admin_token_hint(request: Request) -> str:
    """Where this server's admin token is: its own file, or its environment."""
    settings = request.app.state.settings
    if settings.admin_token:
        return "the server's DARKROOM_ADMIN_TOKEN"
    return str(settings.admin_token_path)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/datasets") -> HTMLResponse:
    return page(request, "login.html", next=next, error=None, admin_hint=_admin_token_hint(request))


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    session: SessionDep,
    token: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/datasets",
) -> Response:
    try:
        principal = authenticate(session, token.strip())
        if principal.is_run or principal.is_deployment:
            raise Unauthorized("a run's or a deployment's token cannot sign in")
    except Unauthorized:
        return page(request, "login.html", next=next, error="That token is not valid.",
                    admin_hint=_admin_token_hint(request))  # fmt: skip
    target = next if next.startswith("/") and not next.startswith("//") else "/datasets"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", max_age=30 * 24 * 3600)  # fmt: skip
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


for module in (version_pages, job_pages, process, catalog, model_upload, deployment_pages,
               pipeline_pages):  # fmt: skip
    router.include_router(module.router)
