"""Datasets, a version's tabs (assets, jobs, settings with its labels) and the asset view."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from darkroom.db.models import AuthorKind, TargetKind
from darkroom.domain import (
    annotations,
    assets,
    datasets,
    jobs,
    labels,
    lineage,
    transfer,
    versions,
)
from darkroom.domain.accounts import Principal, user_names
from darkroom.domain.pagination import PageRequest
from darkroom.domain.thumbnails import thumbnail
from darkroom.domain.transfer import Format, OnExisting
from darkroom.errors import DarkroomError
from darkroom.http.deps import SessionDep, SettingsDep, StoreDep
from darkroom.http.responses import blob_response, export_archive
from darkroom.http.schemas import DbInt
from darkroom.job_labels import job_name
from darkroom.text import is_number
from darkroom.web.auth import UserDep
from darkroom.web.graphs import BOX_H, BOX_W, LABEL_GAP, Graph, Node, layered
from darkroom.web.notices import with_notice
from darkroom.web.render import page

__all__ = ["router"]

GRID_PAGE = 48
router = APIRouter()


@router.get("/datasets", response_class=HTMLResponse)
def datasets_page(
    request: Request, session: SessionDep, user: UserDep, error: str | None = None
) -> HTMLResponse:
    items = datasets.list_datasets(session, user, PageRequest(limit=1000)).items
    return page(request, "datasets.html", datasets=items, error=error)


@router.post("/datasets", response_class=HTMLResponse)
def create_dataset(
    request: Request,
    session: SessionDep,
    user: UserDep,
    name: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
) -> Response:
    """New dataset, with the API's rules (a name, unique in the organization)."""
    try:
        created = datasets.create_dataset(session, user, name, description)
    except DarkroomError as exc:
        session.rollback()
        return datasets_page(request, session, user, exc.message)
    return RedirectResponse(with_notice(f"/datasets/{created.id}", "dataset-created"), 303)


@router.get("/datasets/{dataset_id}", response_class=HTMLResponse)
def dataset_page(
    request: Request,
    dataset_id: DbInt,
    session: SessionDep,
    user: UserDep,
    error: str | None = None,
) -> HTMLResponse:
    ds = datasets.get_dataset(session, user, dataset_id)
    items = versions.list_versions(session, user, dataset_id, PageRequest(limit=1000)).items
    names = {v.id: v.name for v in items}
    counts = versions.asset_counts(session, set(names))
    made = lineage.dataset_lineage(session, user, ds.id)
    return page(request, "dataset.html", dataset=ds, versions=_tree(items), names=names,
                error=error, graph=lineage_graph(made, counts), counts=counts,
                box_w=BOX_W, box_h=BOX_H)  # fmt: skip


def lineage_graph(made: list[lineage.Made], counts: dict[int, int]) -> Graph:
    """Versions as nodes; an edge from what each was made of, named by the job that made it
    (its processing and revision, its pipeline) or "copy"."""
    nodes = []
    for m in made:
        label, href = "copy", None
        if m.job_id is not None:
            label = f"{m.processing} r{m.revision} · {job_name(m.job_number)}"
            href = f"/jobs/{m.job_id}"
            if m.pipeline:
                label = f"{m.pipeline} · {label}"
        assets = counts.get(m.version.id, 0)
        jobs = (f"{assets} asset{'s' if assets != 1 else ''} · "
                f"{m.jobs_on_it} job{'s' if m.jobs_on_it != 1 else ''}")  # fmt: skip
        nodes.append(Node(str(m.version.id), m.version.name, "version", f"/versions/{m.version.id}",
                          subtitle=jobs, parent=str(m.source_id) if m.source_id else None,
                          edge_label=label, edge_href=href))  # fmt: skip
    return layered(nodes, gap=LABEL_GAP)


@router.post("/datasets/{dataset_id}/versions", response_class=HTMLResponse)
def create_version(
    request: Request,
    dataset_id: DbInt,
    session: SessionDep,
    user: UserDep,
    name: Annotated[str, Form()] = "",
    parent: Annotated[str, Form()] = "",
) -> Response:
    """New version, empty or a copy of `parent` (its labels, images and annotations)."""
    try:
        created = versions.create_version(
            session, user, dataset_id, name,
            parent_version_id=int(parent) if is_number(parent) else None,
        )  # fmt: skip
    except DarkroomError as exc:
        session.rollback()
        return dataset_page(request, dataset_id, session, user, exc.message)
    return RedirectResponse(with_notice(f"/versions/{created.id}", "version-created"), 303)


@router.post("/ui/versions/{version_id}/assets")
async def upload_asset(
    request: Request, version_id: DbInt, session: SessionDep, user: UserDep, store: StoreDep,
    settings: SettingsDep,
) -> Response:  # fmt: skip
    """One image from the version page's upload (a file at a time, so that each refused file
    is told apart with its reason): the API's checks, answered as JSON."""
    async with request.form(max_files=1, max_fields=2) as form:  # closes the spooled file
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return JSONResponse({"error": "no file"}, status_code=422)
        try:
            [created] = await run_in_threadpool(
                assets.add_assets, session, store, user, version_id,
                [(upload.filename or "image", upload.file)],
                max_pixels=settings.max_image_pixels, max_bytes=settings.max_upload_bytes,
            )  # fmt: skip
        except DarkroomError as exc:
            session.rollback()
            return JSONResponse({"error": exc.message}, status_code=exc.status_code)
    return JSONResponse({"id": created.id, "filename": created.filename}, status_code=201)


def _tree(items: list[Any]) -> list[tuple[Any, int]]:
    """Versions depth first under their parents, with their depth: the dataset page shows
    what was made from what (a version whose parent is elsewhere is a root)."""
    children: dict[int | None, list[Any]] = {}
    ids = {v.id for v in items}
    for v in items:
        parent = v.parent_version_id if v.parent_version_id in ids else None
        children.setdefault(parent, []).append(v)
    out: list[tuple[Any, int]] = []

    def walk(parent: int | None, depth: int) -> None:
        for v in sorted(children.get(parent, []), key=lambda x: x.id):
            out.append((v, depth))
            walk(v.id, depth + 1)

    walk(None, 0)
    return out


def _asset_filter(label: str | None, tag: str | None, annotated: str | None) -> assets.AssetFilter:
    """The grid's filters from query strings ("" means any; annotated is "yes" or "no")."""
    return assets.AssetFilter(
        label or None, tag or None, {"yes": True, "no": False}.get(annotated or "")
    )


def _grid(session: Session, user: Principal, version_id: DbInt, after: DbInt | None,
          flt: assets.AssetFilter, version_labels: list[Any]) -> dict[str, Any]:  # fmt: skip
    """One page of tiles: the assets, then all their shapes in one query."""
    result = assets.list_assets(session, user, version_id, PageRequest(after, GRID_PAGE), flt)
    label_map = {x.id: x for x in version_labels}
    shapes = annotations.shapes_of_assets(session, [a.id for a in result.items])
    return {"assets": result.items, "next": result.next, "shapes": shapes, "label_map": label_map}


@router.get("/versions/{version_id}", response_class=HTMLResponse)
def version_page(
    request: Request,
    version_id: DbInt,
    session: SessionDep,
    user: UserDep,
    label: str | None = None,
    tag: str | None = None,
    annotated: str | None = None,
) -> HTMLResponse:
    """The Assets tab: thumbnails with their boxes, filtered, "load more" by keyset."""
    version = versions.get_version(session, user, version_id)
    version_labels = labels.list_labels(session, user, version_id)
    try:
        flt = _asset_filter(label, tag, annotated)
        grid, error = _grid(session, user, version_id, None, flt, version_labels), None
    except DarkroomError as exc:
        grid, error = {"assets": [], "next": None, "shapes": {}, "label_map": {}}, exc.message
    stats = versions.version_stats(session, user, version_id)
    return page(request, "version.html", tab="assets", version=version, stats=stats, error=error,
                filters={"label": label or "", "tag": tag or "", "annotated": annotated or ""},
                labels=version_labels, query=_filters_query(request), **grid)  # fmt: skip


def _filters_query(request: Request) -> str:
    """The grid's filters as a query string (a notice is not a filter)."""
    return "&".join(p for p in request.url.query.split("&")
                    if p and not p.startswith(("after=", "notice=")))  # fmt: skip


@router.get("/versions/{version_id}/grid", response_class=HTMLResponse)
def version_grid(
    request: Request,
    version_id: DbInt,
    session: SessionDep,
    user: UserDep,
    after: DbInt,
    label: str | None = None,
    tag: str | None = None,
    annotated: str | None = None,
) -> HTMLResponse:
    """The next tiles, for the grid's "load more" (htmx)."""
    flt = _asset_filter(label, tag, annotated)
    grid = _grid(
        session, user, version_id, after, flt, labels.list_labels(session, user, version_id)
    )
    return page(request, "_tiles.html", version_id=version_id, query=_filters_query(request),
                **grid)  # fmt: skip


@router.get("/versions/{version_id}/jobs", response_class=HTMLResponse)
def version_jobs_page(
    request: Request, version_id: DbInt, session: SessionDep, user: UserDep
) -> HTMLResponse:
    """The Jobs tab: what ran on this version, newest first."""
    version = versions.get_version(session, user, version_id)
    flt = jobs.JobFilter(version_id=version_id, target_kind=TargetKind.dataset_version)
    items = jobs.list_jobs(session, user, PageRequest(limit=200, newest_first=True), flt).items
    return page(request, "version_jobs.html", tab="jobs", version=version, jobs=items,
                users=user_names(session, user))  # fmt: skip


def _labels_page(
    request: Request, session: Session, user: Principal, version_id: DbInt,
    error: str | None = None, *, report: Any = None, import_error: str | None = None,
) -> HTMLResponse:  # fmt: skip
    version = versions.get_version(session, user, version_id)
    stats = versions.version_stats(session, user, version_id)
    counts = {c.label_id: c.shapes for c in stats.labels}
    found = labels.list_labels(session, user, version_id)
    return page(request, "version_labels.html", tab="settings", version=version, error=error,
                labels=found, counts=counts, next_color=labels.next_color(len(found)),
                report=report, import_error=import_error, formats=list(Format),
                on_existing=list(OnExisting))  # fmt: skip


@router.get("/versions/{version_id}/labels", response_class=HTMLResponse)
def labels_page(
    request: Request, version_id: DbInt, session: SessionDep, user: UserDep
) -> HTMLResponse:
    """Settings -> Labels: what a pre-annotation may write; add, rename, recolour, delete."""
    return _labels_page(request, session, user, version_id)


def _label_change(
    request: Request, session: Session, user: Principal, version_id: DbInt, change: Any,
    notice: str,
) -> Response:  # fmt: skip
    try:
        change()
    except DarkroomError as exc:
        session.rollback()
        return _labels_page(request, session, user, version_id, exc.message)
    return RedirectResponse(with_notice(f"/versions/{version_id}/labels", notice), 303)


@router.post("/versions/{version_id}/labels", response_class=HTMLResponse)
def add_label(
    request: Request,
    version_id: DbInt,
    session: SessionDep,
    user: UserDep,
    name: Annotated[str, Form()] = "",
    color: Annotated[str, Form()] = "",
) -> Response:
    return _label_change(request, session, user, version_id,
                         lambda: labels.create_label(session, user, version_id, name,
                                                     color or None), "label-added")  # fmt: skip


@router.post("/ui/labels/{label_id}", response_class=HTMLResponse)
def edit_label(
    request: Request,
    label_id: DbInt,
    session: SessionDep,
    user: UserDep,
    name: Annotated[str, Form()] = "",
    color: Annotated[str, Form()] = "",
) -> Response:
    label = labels.get_label(session, user, label_id)
    update = lambda: labels.update_label(session, user, label_id, name=name, color=color or None)  # noqa: E731
    return _label_change(request, session, user, label.version_id, update, "label-saved")


@router.post("/ui/labels/{label_id}/delete", response_class=HTMLResponse)
def remove_label(
    request: Request,
    label_id: DbInt,
    session: SessionDep,
    user: UserDep,
    force: Annotated[bool, Form()] = False,
) -> Response:
    label = labels.get_label(session, user, label_id)
    delete = lambda: labels.delete_label(session, user, label_id, force=force)  # noqa: E731
    return _label_change(request, session, user, label.version_id, delete, "label-deleted")


@router.get("/ui/versions/{version_id}/export")
def export_version(
    version_id: DbInt, format: Format, session: SessionDep, user: UserDep, store: StoreDep
) -> Response:
    """The Settings tab's Export: the API's archive, for the signed-in user."""
    return export_archive(session, store, user, version_id, format)


@router.post("/ui/versions/{version_id}/import", response_class=HTMLResponse)
def import_archive(
    request: Request,
    version_id: DbInt,
    session: SessionDep,
    user: UserDep,
    store: StoreDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File()],
    format: Annotated[Format, Form()],
    on_existing: Annotated[OnExisting, Form()] = OnExisting.replace,
) -> Response:
    """The Settings tab's Import: the API's import; its report (what was added, matched and
    skipped, with why) shows on the tab."""
    try:
        report = transfer.import_into_version(
            session, store, user, version_id, format, file.file, settings.import_limits,
            on_existing,
        )  # fmt: skip
    except DarkroomError as exc:
        session.rollback()
        return _labels_page(request, session, user, version_id, import_error=exc.message)
    return _labels_page(request, session, user, version_id, report=report)


@router.get("/assets/{asset_id}", response_class=HTMLResponse)
def asset_page(
    request: Request, asset_id: DbInt, session: SessionDep, user: UserDep
) -> HTMLResponse:
    """The full image with every author's shapes, listed by author (a person or a run)."""
    asset = assets.get_asset(session, user, asset_id)
    version = versions.get_version(session, user, asset.version_id)
    label_map = {x.id: x for x in labels.list_labels(session, user, asset.version_id)}
    authored = annotations.list_annotations(session, user, asset_id)
    run_ids = {a.author_id for a in authored if a.author_kind == AuthorKind.run}
    used = {s.label_id for a in authored for s in a.shapes}
    shown = [label for label_id, label in label_map.items() if label_id in used]
    return page(request, "asset.html", asset=asset, version=version, annotations=authored,
                label_map=label_map, shown_labels=shown, users=user_names(session, user),
                runs=jobs.runs_by_id(session, user, run_ids))  # fmt: skip


@router.post("/ui/shapes/{shape_id}/delete")
def delete_shape(shape_id: DbInt, session: SessionDep, user: UserDep) -> Response:
    """The asset page's per-shape Delete."""
    asset_id = annotations.delete_shape(session, user, shape_id)
    return RedirectResponse(with_notice(f"/assets/{asset_id}#shapes", "shape-deleted"), 303)


@router.get("/ui/assets/{asset_id}/thumbnail")
def asset_thumbnail(
    asset_id: DbInt, session: SessionDep, user: UserDep, store: StoreDep
) -> Response:
    asset = assets.get_asset(session, user, asset_id)
    return Response(thumbnail(store, asset.blob_sha256, 256), media_type="image/jpeg",
                    headers={"Cache-Control": "private, max-age=31536000, immutable"})  # fmt: skip


@router.get("/ui/assets/{asset_id}/image")
def asset_image(
    asset_id: DbInt, request: Request, session: SessionDep, user: UserDep, store: StoreDep
) -> Response:
    """The original bytes, as the API serves them, for the cookie-authenticated asset view."""
    asset = assets.get_asset(session, user, asset_id)
    return blob_response(request, store, asset.blob_sha256, asset.mime)
