"""What people call a job: its number in its organization, never its database id (ids count
every organization's jobs, numbers count one organization's). A preview takes no number."""

from __future__ import annotations

__all__ = ["job_label", "job_name"]


def job_label(number: int | None) -> str:
    """For a table cell: "#3", or "preview"."""
    return "preview" if number is None else f"#{number}"


def job_name(number: int | None) -> str:
    """For a sentence: "job #3", or "preview job"."""
    return "preview job" if number is None else f"job {job_label(number)}"
