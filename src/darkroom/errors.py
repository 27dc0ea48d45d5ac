"""Domain errors: one root, a machine-readable code and an HTTP status on each.

    DarkroomError
    ├── NotFound                404  not_found (also for another organization's ids)
    ├── Conflict                409  conflict, already_exists, label_in_use, …
    ├── InvalidInput            422  invalid_input, empty_file, corrupt_image, unsafe_archive, …
    ├── PayloadTooLarge         413  payload_too_large, image_too_large, archive_too_large
    ├── UnsupportedMediaType    415  unsupported_media_type
    ├── Unauthorized            401  unauthorized
    └── Forbidden               403  forbidden (known to the caller, but not theirs to change)

Services raise these and never know about HTTP; the API maps them once
(`darkroom.api.errors`) to `{"error": {"code", "message", "details"}}`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Conflict",
    "DarkroomError",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "PayloadTooLarge",
    "Unauthorized",
    "UnsupportedMediaType",
]


class DarkroomError(Exception):
    """Root of every error darkroom raises on purpose."""

    status_code: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class NotFound(DarkroomError):
    status_code = 404
    code = "not_found"

    @classmethod
    def of(cls, kind: str, ident: object) -> NotFound:
        return cls(f"{kind} {ident} not found", details={"kind": kind, "id": ident})


class Conflict(DarkroomError):
    status_code = 409
    code = "conflict"


class InvalidInput(DarkroomError):
    status_code = 422
    code = "invalid_input"


class PayloadTooLarge(DarkroomError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(DarkroomError):
    status_code = 415
    code = "unsupported_media_type"


class Unauthorized(DarkroomError):
    status_code = 401
    code = "unauthorized"


class Forbidden(DarkroomError):
    status_code = 403
    code = "forbidden"
