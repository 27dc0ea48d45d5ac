"""Processings, the jobs that launch them and their runs: logs, followed live, re-runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

from darkroom.client._transport import (
    DEFAULT_TIMEOUT_S,
    JSON,
    Transport,
    raise_for_error,
)

__all__ = ["ProcessingsApi"]


class ProcessingsApi(Transport):
    """What runs, and its jobs and runs."""

    # -- processings --------------------------------------------------------------------------

    def list_processings(self) -> list[JSON]:
        return list(self._iter("/processings"))

    def get_processing(self, ident: int | str) -> JSON:
        return self._json("GET", f"/processings/{ident}")

    def create_processing(self, **fields: Any) -> JSON:
        """Fields as `POST /processings`: name, type, source, parameters_schema, timeout_s, …"""
        return self._json("POST", "/processings", json=fields)

    def update_processing(self, ident: int | str, **fields: Any) -> JSON:
        return self._json("PATCH", f"/processings/{ident}", json=fields)

    def list_revisions(self, ident: int | str) -> list[JSON]:
        return self._json("GET", f"/processings/{ident}/revisions")["items"]

    def push_bundle(self, archive: bytes, *, dev: bool = False) -> JSON:
        """Uploads a bundle archive: `{"processing", "revision", "created"}`."""
        return self._json(
            "POST", "/processings/push", files={"bundle": ("bundle.tar.gz", archive)},
            data={"dev": "true" if dev else "false"},
        )  # fmt: skip

    def download_run_bundle(self, run_id: int) -> bytes:
        return self._send("GET", f"/runs/{run_id}/bundle").content

    # -- jobs and runs ------------------------------------------------------------------------

    def launch_job(
        self,
        processing: int | str,
        target_version_id: int | None,
        *,
        model_version_id: int | None = None,
        parameters: dict[str, Any] | None = None,
        revision: int | None = None,
        target_deployment_id: int | str | None = None,
        window: tuple[str | None, str | None] | None = None,
    ) -> JSON:
        """`window`: (start, end) ISO times of the predictions a job on a deployment reads."""
        body = {
            "processing": processing,
            "target_version_id": target_version_id,
            "model_version_id": model_version_id,
            "parameters": parameters,
            "revision": revision,
        }
        if target_deployment_id is not None:
            body["target_deployment_id"] = target_deployment_id
        if window is not None:
            body["window_start"], body["window_end"] = window
        return self._json("POST", "/jobs", json=body)

    def list_jobs(self, **filters: Any) -> list[JSON]:
        """All jobs, oldest first; filters `version_id`, `model_version_id`, `status`,
        `processing`."""
        return list(self._iter("/jobs", filters))

    def get_job(self, job_id: int) -> JSON:
        return self._json("GET", f"/jobs/{job_id}")

    def rerun_job(
        self, job_id: int, parameters: dict[str, Any] | None = None, *, resume: bool = False
    ) -> JSON:
        """The job's next run; `resume` skips the assets its earlier runs finished."""
        body: JSON = {"parameters": parameters} if parameters is not None else {}
        if resume:
            body["resume"] = True
        return self._json("POST", f"/jobs/{job_id}/rerun", json=body)

    def get_run(self, run_id: int) -> JSON:
        return self._json("GET", f"/runs/{run_id}")

    def cancel_run(self, run_id: int) -> JSON:
        return self._json("POST", f"/runs/{run_id}/cancel")

    def run_logs(self, run_id: int, after: int = 0, limit: int = 1000) -> JSON:
        """One page of log lines after seq `after`: `{"items", "next"}`."""
        return self._json("GET", f"/runs/{run_id}/logs", params={"after": after, "limit": limit})

    def follow_logs(self, run_id: int, after: int = 0) -> Iterator[tuple[str, JSON]]:
        """Streams `("log", line)` events as they land, then one `("end", run)`.

        Reconnects after a dropped connection and resumes after the last line received.
        """
        while True:
            try:
                with self._http.stream(
                    "GET",
                    f"/runs/{run_id}/logs/stream",
                    headers={"Last-Event-ID": str(after), "Accept": "text/event-stream"},
                    timeout=httpx.Timeout(DEFAULT_TIMEOUT_S, read=None),
                ) as response:
                    raise_for_error(response)
                    for event, data in _sse_events(response.iter_lines()):
                        payload = json.loads(data)
                        if event == "log":
                            after = payload["seq"]
                        yield event, payload
                        if event == "end":
                            return
            except (httpx.RemoteProtocolError, httpx.ReadError):
                continue  # the server dropped us: reconnect after `after`


def _sse_events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event, data) pairs of a text/event-stream; comments and pings are skipped."""
    event, data = "message", []
    for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
