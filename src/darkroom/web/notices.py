"""What a page says after the action that led to it (Save, Add, Launch, Cancel…).

An action redirects with `?notice=<key>`; the next page shows the key's sentence. Keys, not
text, travel in the URL: nobody can make a page say something darkroom did not write.
"""

from __future__ import annotations

from starlette.requests import Request

__all__ = ["NOTICES", "notice_of", "with_notice"]

NOTICES = {
    "dataset-created": "Dataset created: add its first version below.",
    "version-created": "Version created: drop images on the page to upload them.",
    "launched": "Job launched: its first run is queued and starts in a moment.",
    "rerun": "Re-run launched: the new attempt runs the processing's newest revision.",
    "resumed": "Resumed: the new attempt skips what the earlier runs finished.",
    "cancel": "Cancel requested: the run is stopped within a few seconds; what it wrote stays.",
    "annotations-removed": "This job's annotations were removed; people's annotations stay.",
    "shape-deleted": "Shape deleted.",
    "label-added": "Label added.",
    "label-saved": "Label saved.",
    "label-deleted": "Label deleted.",
    "model-created": "Model created: upload its first version below.",
    "model-version-saved": "Model version saved: pre-annotate with it from a version's Process "
    "button.",
    "processing-created": "Processing created: launch it from a version's Process button.",
    "processing-saved": "Saved. A change to what runs is a new revision; re-runs take it.",
    "deployed": "Deployment created: its replicas load the model and it serves in a moment.",
    "deployment-saved": "Saved. A change is a new revision: its replicas take over once ready.",
    "deployment-stopped": "Stopped: its replicas are gone and predict answers 409.",
    "deployment-started": "Started: its replicas load the model and it serves in a moment.",
    "predictions-reviewed": "Review saved.",
    "predictions-sent": "Sent: the images are assets of the version with their boxes.",
    "pipeline-launched": "Pipeline launched: the steps reading the input start now, the others "
    "as their inputs succeed.",
    "pipeline-rerun": "Re-run launched: the failed steps run again; the succeeded ones are kept.",
    "pipeline-cancel": "Cancel requested: the active steps stop within a few seconds.",
}


def with_notice(url: str, key: str) -> str:
    """`url` with the notice `key` to show on arrival (a fragment stays last)."""
    assert key in NOTICES, key
    base, hash_, fragment = url.partition("#")
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}notice={key}{hash_}{fragment}"


def notice_of(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("notice", ""))
