"""One place maps every error to `{"error": {"code", "message", "details"}}`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, IntegrityError, StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException

from darkroom.errors import DarkroomError

__all__ = ["error_response", "install_error_handlers"]

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_response(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    body = {"error": {"code": code, "message": message, "details": details}}
    return JSONResponse(body, status_code=status, headers=headers)


def _jsonable_errors(errors: Any) -> list[dict[str, Any]]:
    return [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in errors
    ]


def install_error_handlers(
    app: FastAPI, html: Callable[[Request, DarkroomError], Response] | None = None
) -> None:
    """`html` renders errors of requests outside /api (the web pages)."""

    @app.exception_handler(DarkroomError)
    async def _domain(request: Request, exc: DarkroomError) -> Response:
        if html is not None and not request.url.path.startswith("/api/"):
            return html(request, exc)
        return error_response(exc.status_code, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _jsonable_errors(exc.errors())
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        return error_response(422, "invalid_input", f"{where}: {first['msg']}", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    # Bad input that reached the database or a parser before a check caught it: still the
    # client's error, never a 500.
    @app.exception_handler(RecursionError)
    async def _too_deep(_: Request, exc: RecursionError) -> JSONResponse:
        return error_response(422, "too_deep", "input nested too deeply")

    @app.exception_handler(OverflowError)
    async def _overflow(_: Request, exc: OverflowError) -> JSONResponse:
        return error_response(422, "out_of_range", f"a number is out of range: {exc}")

    @app.exception_handler(StatementError)
    async def _statement(request: Request, exc: StatementError) -> JSONResponse:
        orig = exc.orig
        if isinstance(exc, IntegrityError):  # a concurrent request wrote the same thing first
            log.info("integrity error on %s %s: %s", request.method, request.url.path, orig)
            return error_response(409, "conflict", "a concurrent change conflicted with this "
                                  "one; read the current state and retry")  # fmt: skip
        if isinstance(orig, OverflowError) or isinstance(exc, DataError):
            detail = str(orig).splitlines()[0] if orig is not None else "invalid value"
            return error_response(422, "unstorable_value", f"a value cannot be stored: {detail}")
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "internal server error; see the server log")
