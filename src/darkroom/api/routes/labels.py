from __future__ import annotations

from fastapi import APIRouter, Response, status

from darkroom.domain import labels
from darkroom.http.deps import PrincipalDep, SessionDep
from darkroom.http.schemas import DbInt, LabelPublic, LabelUpdate

router = APIRouter(prefix="/labels", tags=["labels"])


@router.patch("/{label_id}", response_model=LabelPublic)
def update_label(
    label_id: DbInt, body: LabelUpdate, session: SessionDep, principal: PrincipalDep
) -> object:
    """Rename, recolour or move a label; its shapes keep pointing at it."""
    return labels.update_label(
        session, principal, label_id, name=body.name, color=body.color, position=body.position
    )


@router.delete("/{label_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_label(
    label_id: DbInt, session: SessionDep, principal: PrincipalDep, force: bool = False
) -> Response:
    """Refused with 409 `label_in_use` when shapes use it, unless `?force=true`."""
    labels.delete_label(session, principal, label_id, force=force)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
