"""Models and their versions: weights up (an ONNX file, a SavedModel folder zipped on the
way) and down."""

from __future__ import annotations

import contextlib
import json
import tempfile
import zipfile
from pathlib import Path
from typing import BinaryIO

from darkroom.client._transport import (
    JSON,
    TRANSFER_TIMEOUT_S,
    Transport,
    raise_for_error,
)

__all__ = ["ModelsApi", "zip_folder"]


class ModelsApi(Transport):
    """The model registry."""

    # -- models -------------------------------------------------------------------------------

    def list_models(self) -> list[JSON]:
        return list(self._iter("/models"))

    def create_model(self, name: str, description: str = "") -> JSON:
        return self._json("POST", "/models", json={"name": name, "description": description})

    def get_model(self, model_id: int) -> JSON:
        return self._json("GET", f"/models/{model_id}")

    def list_model_versions(self, model_id: int) -> list[JSON]:
        return self._json("GET", f"/models/{model_id}/versions")["items"]

    def upload_model_version(
        self,
        model_id: int,
        path: str | Path,
        *,
        name: str = "v1",
        family: str | None = None,
        labels: list[str] | None = None,
        label_map: str | Path | None = None,
    ) -> JSON:
        """Uploads ONNX weights, a TF-OD frozen graph, or a TF-OD SavedModel (its folder, zipped
        here, or the zip); labels, family and input size default to what the file says (a
        TensorFlow model needs `labels` or a `label_map` .pbtxt file)."""
        form = {"name": name}
        if family:
            form["family"] = family
        if labels:
            form["labels"] = json.dumps(labels)
        path = Path(path)
        with contextlib.ExitStack() as stack:
            if path.is_dir():
                weights: BinaryIO = stack.enter_context(tempfile.TemporaryFile())
                zip_folder(path, weights)
                filename = f"{path.name}.zip"
            else:
                weights, filename = stack.enter_context(path.open("rb")), path.name
            files = {"file": (filename, weights, "application/octet-stream")}
            if label_map is not None:
                text = stack.enter_context(Path(label_map).open("rb"))
                files["label_map"] = (Path(label_map).name, text, "text/plain")
            return self._json(
                "POST",
                f"/models/{model_id}/versions",
                data=form,
                files=files,
                timeout=TRANSFER_TIMEOUT_S,
            )

    def get_model_version(self, version_id: int) -> JSON:
        return self._json("GET", f"/model-versions/{version_id}")

    def download_weights(self, version_id: int, target: str | Path) -> Path:
        """Streams a model version's weights into `target` (written whole, then renamed)."""
        target = Path(target)
        tmp = target.with_name(target.name + ".part")
        try:
            with self._http.stream(
                "GET", f"/model-versions/{version_id}/weights", timeout=TRANSFER_TIMEOUT_S
            ) as response:
                raise_for_error(response)
                with tmp.open("wb") as out:
                    for chunk in response.iter_bytes(1024 * 1024):
                        out.write(chunk)
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
        return target


def zip_folder(folder: Path, out: BinaryIO) -> None:
    """`folder` as a zip under its own name (a SavedModel folder travels so), rewound."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{folder.name}/{path.relative_to(folder).as_posix()}")
    out.seek(0)
