from __future__ import annotations

from fastapi import APIRouter, Response, status

from darkroom.domain import annotations
from darkroom.http.deps import PrincipalDep, SessionDep
from darkroom.http.schemas import DbInt

router = APIRouter(prefix="/shapes", tags=["annotations"])


@router.delete("/{shape_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_shape(shape_id: DbInt, session: SessionDep, principal: PrincipalDep) -> Response:
    """Deletes one shape, whoever drew it (a wrong box of a pre-annotation)."""
    annotations.delete_shape(session, principal, shape_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
