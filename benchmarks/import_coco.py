"""Import, then export, of 100,000 64x64 assets with COCO annotations through the API (goal:
each < 60 s).

Baselines in the same run: for the import, the bare work any importer must do on the same
archive (read every entry with zipfile and decode it with Pillow): the ratio says what darkroom
adds on top (hashing, blob writes, validation, rows). For the export, writing the same images
and a COCO JSON of the same annotations into a zip with zipfile and json: the ratio says what
darkroom adds (queries, shapes, the HTTP response).
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).parent))
from _common import darkroom, database, write_result

LABELS = ["cat", "dog", "car", "person", "bike"]


def make_archive(path: Path, n: int) -> int:
    rng = random.Random(0)
    images, annotations = [], []
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for i in range(n):
            img = Image.new("RGB", (64, 64), (i % 256, (i // 256) % 256, (i // 65536) % 256))
            x, y = rng.randrange(0, 40), rng.randrange(0, 40)
            ImageDraw.Draw(img).rectangle([x, y, x + 20, y + 20], fill=(255, 255, 255))
            out = io.BytesIO()
            img.save(out, "JPEG", quality=80)
            name = f"{i:06}.jpg"
            zf.writestr(f"images/{name}", out.getvalue())
            images.append({"id": i + 1, "file_name": name, "width": 64, "height": 64})
            for _ in range(rng.randrange(1, 4)):
                annotations.append({
                    "id": len(annotations) + 1, "image_id": i + 1,
                    "category_id": rng.randrange(1, len(LABELS) + 1),
                    "bbox": [rng.uniform(0, 40), rng.uniform(0, 40), rng.uniform(4, 24), rng.uniform(4, 24)],
                })  # fmt: skip
        categories = [{"id": i + 1, "name": n} for i, n in enumerate(LABELS)]
        doc = {"images": images, "categories": categories, "annotations": annotations}
        zf.writestr("annotations.json", json.dumps(doc))
    return len(annotations)


def baseline(path: Path) -> float:
    start = time.perf_counter()
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if info.filename.endswith(".jpg"):
                with Image.open(io.BytesIO(zf.read(info))) as img:
                    img.load()
    return time.perf_counter() - start


def export_baseline(path: Path, out: Path) -> float:
    """Seconds to write the archive's images and a JSON of its annotations into a new zip."""
    with zipfile.ZipFile(path) as src:
        entries = [(i.filename, src.read(i)) for i in src.infolist()]
    start = time.perf_counter()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in entries:
            if name.endswith(".json"):
                data = json.dumps(json.loads(data)).encode()
            zf.writestr(name, data)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assets", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        archive = tmp / "coco.zip"
        n_shapes = make_archive(archive, args.assets)
        base_s = baseline(archive)
        with database(args.backend, tmp) as url, darkroom(url, tmp) as (_, api):
            ds = api.post("/api/v1/datasets", json={"name": "bench"}).json()
            v = api.post(f"/api/v1/datasets/{ds['id']}/versions", json={"name": "v"}).json()
            start = time.perf_counter()
            with archive.open("rb") as fh:
                r = api.post(
                    f"/api/v1/versions/{v['id']}/import",
                    params={"format": "coco"},
                    files={"file": ("coco.zip", fh, "application/zip")},
                )
            took = time.perf_counter() - start
            r.raise_for_status()
            report = r.json()
            assert report["images_added"] == args.assets, report
            assert report["shapes_added"] == n_shapes, report

            exported = tmp / "export.zip"
            start = time.perf_counter()
            with (
                exported.open("wb") as out,
                api.stream(
                    "GET", f"/api/v1/versions/{v['id']}/export", params={"format": "coco"}
                ) as r,
            ):
                r.raise_for_status()
                for chunk in r.iter_bytes():
                    out.write(chunk)
            export_s = time.perf_counter() - start
            with zipfile.ZipFile(exported) as zf:
                doc = json.loads(zf.read("annotations.json"))
                assert len(zf.namelist()) == args.assets + 1
            assert (len(doc["images"]), len(doc["annotations"])) == (args.assets, n_shapes)
        export_base_s = export_baseline(archive, tmp / "bare-export.zip")
        result = {
            "assets": args.assets,
            "shapes": n_shapes,
            "backend": args.backend,
            "archive_mb": round(archive.stat().st_size / 1e6, 1),
            "darkroom_s": round(took, 2),
            "baseline_read_decode_s": round(base_s, 2),
            "ratio_vs_baseline": round(took / base_s, 2),
            "assets_per_s": round(args.assets / took),
            "export_s": round(export_s, 2),
            "baseline_export_s": round(export_base_s, 2),
            "export_ratio_vs_baseline": round(export_s / export_base_s, 2),
            "goal_s": 60,
        }
    path = write_result(f"import_coco_{args.backend}", result)
    print(
        f"import_coco[{args.backend}]: {args.assets} assets + {n_shapes} shapes in {took:.1f} s "
        f"({result['assets_per_s']}/s; bare read+decode {base_s:.1f} s, x{result['ratio_vs_baseline']}; "
        f"goal < 60 s); export {export_s:.1f} s (bare zip+json {export_base_s:.1f} s, "
        f"x{result['export_ratio_vs_baseline']}; goal < 60 s) -> {path}"
    )


if __name__ == "__main__":
    main()
