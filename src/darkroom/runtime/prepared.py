"""Where the executor put what it prepared for a run, as the runtime finds it.

The executor readies a run's pieces before it starts (`darkroom.engine.preparation`) and names
them in the run's environment:

- `DARKROOM_BUNDLE_DIR`: a bundle revision's code, unpacked read-only once per hash; the run's
  interpreter is that bundle's environment, and the runtime only imports from the folder.
- `DARKROOM_BLOBS`: hard links to the input version's image files, named by sha256, when the
  blob store is on the executor's machine; the SDK reads them instead of downloading.
- `DARKROOM_CACHE`: the cache of weights, bundles and environments (`~/.cache/darkroom` by
  default); a sandboxed run sees only its own pieces of it.
- `DARKROOM_RUN_GPUS`: how many GPUs the run was lent (`CUDA_VISIBLE_DEVICES` names them).
"""

import os
from pathlib import Path

__all__ = ["BLOBS_ENV", "BUNDLE_DIR_ENV", "GPUS_ENV", "cache_root"]

BUNDLE_DIR_ENV = "DARKROOM_BUNDLE_DIR"
BLOBS_ENV = "DARKROOM_BLOBS"
GPUS_ENV = "DARKROOM_RUN_GPUS"


def cache_root() -> Path:
    return Path(os.environ.get("DARKROOM_CACHE", Path.home() / ".cache" / "darkroom"))
