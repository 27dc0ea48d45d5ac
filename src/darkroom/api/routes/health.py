from __future__ import annotations

from fastapi import APIRouter

from darkroom import __version__
from darkroom.http.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def get_health() -> Health:
    """Liveness, without authentication."""
    return Health(status="ok", version=__version__)
