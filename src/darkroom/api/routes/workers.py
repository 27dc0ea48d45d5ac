"""The workers claiming runs, as they advertise themselves (see `domain.workers`)."""

from __future__ import annotations

from fastapi import APIRouter

from darkroom.domain import workers
from darkroom.http.deps import PrincipalDep, SessionDep, SettingsDep
from darkroom.http.schemas import Page, WorkerPublic

router = APIRouter(prefix="/workers", tags=["workers"])


@router.get("", response_model=Page[WorkerPublic])
def list_workers(
    session: SessionDep, principal: PrincipalDep, settings: SettingsDep
) -> Page[WorkerPublic]:
    """Workers seen within two run leases, the newest first: their executor, run slots and
    GPUs (free now), which a run asking for GPUs waits for."""
    seen = workers.live_workers(session, 2 * settings.run_lease_s)
    return Page[WorkerPublic](items=[WorkerPublic.model_validate(w) for w in seen], next=None)
