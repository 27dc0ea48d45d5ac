"""Rendering for the pages: the Jinja2 environment and the figures pages show about runs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from darkroom import job_labels
from darkroom.db.models import ACTIVE_STATUSES, Run, utcnow
from darkroom.sources import BuiltinSource, Source
from darkroom.web.auth import COOKIE, csrf_token
from darkroom.web.forms import TRISTATE
from darkroom.web.notices import notice_of

__all__ = ["Progress", "duration", "page", "progress_of", "templates"]

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page, or only its fragment when htmx asks for a template that has one."""
    context.setdefault("csrf", csrf_token(request.cookies.get(COOKIE)))
    context.setdefault("partial", request.headers.get("hx-request") == "true")
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def _human(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def duration(run: Run) -> str:
    """Total running time: started to finished, or to now while it runs."""
    if run.started_at is None:
        return ""
    return _human(((run.finished_at or utcnow()) - run.started_at).total_seconds())


@dataclass(frozen=True, slots=True)
class Progress:
    """What a run reported of its progress, with the rate and time left derived from it."""

    done: int
    total: int | None
    percent: float | None
    per_second: float | None
    eta: str | None
    live: bool


def progress_of(run: Run, now: datetime | None = None) -> Progress:
    live = run.status in ACTIVE_STATUSES
    total = run.progress_total
    percent = min(100.0, 100.0 * run.progress_done / total) if total else None
    per_second = eta = None
    if run.started_at is not None and run.progress_done > 0:
        elapsed = ((run.finished_at or now or utcnow()) - run.started_at).total_seconds()
        if elapsed > 0:
            per_second = run.progress_done / elapsed
            if live and total:
                eta = _human(max(0, total - run.progress_done) / per_second)
    return Progress(run.progress_done, total, percent, per_second, eta, live)


def live_every(jobs: list[Any]) -> str:
    """How often a list of jobs refreshes itself: quickly while one of them is active."""
    active = any(j.runs and j.runs[-1].status in ACTIVE_STATUSES for j in jobs)
    return "2s" if active else "5s"


LEVELS = {"WARNING": "warning", "ERROR": "error", "CRITICAL": "error", "DEBUG": "debug"}


def level_class(text: str) -> str:
    """` level-warning` and the like for a log record's line (`LEVEL logger: message`), so
    warnings and errors stand out from INFO lines sharing their stream."""
    level = LEVELS.get(text.split(" ", 1)[0])
    return f" level-{level}" if level else ""


_FRAME = re.compile(r'^(\s*File ")([^"]+)(", line )(\d+)(.*)$')


def trace_line(text: str, processing_id: int, source: Source) -> Markup:
    """A traceback line, its frame linked to the line on the processing's page when the file is
    the processing's own: an inline processing's, a built-in's module or a module it shares
    (the anchors of `processings.code_of`)."""
    match = _FRAME.match(text)
    if match is None:
        return escape(text)
    head, path, middle, number, tail = match.groups()
    name = path.rsplit("/", 1)[-1]
    entry = source.module.rpartition(".")[2] + ".py" if isinstance(source, BuiltinSource) else ""
    if path == "processing.py" or ("/darkroom/processings/" in path and name == entry):
        anchor = f"L{number}"
    elif "/darkroom/processings/" in path and name.endswith(".py"):
        anchor = f"{name[:-3]}-L{number}"
    else:
        return escape(text)
    link = Markup('<a href="/processings/{}#{}" class="trace-link" data-file="{}">{}</a>').format(
        processing_id, anchor, name, path
    )
    return escape(head) + link + escape(middle) + escape(number) + escape(tail)


def job_number(job: Any) -> str:
    """A job (or none: a preview's) as a table cell calls it."""
    return job_labels.job_label(None if job is None else job.number)


def job_name(job: Any) -> str:
    """A job (or none: a preview's) as a sentence calls it."""
    return job_labels.job_name(None if job is None else job.number)


templates.env.globals["duration"] = duration
templates.env.globals["job_number"] = job_number
templates.env.globals["job_name"] = job_name
templates.env.globals["tristate"] = TRISTATE
templates.env.globals["notice_of"] = notice_of
templates.env.globals["trace_line"] = trace_line
templates.env.globals["level_class"] = level_class
templates.env.globals["live_every"] = live_every
templates.env.globals["ACTIVE"] = [str(s) for s in ACTIVE_STATUSES]
