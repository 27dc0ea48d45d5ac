"""Bundles: a processing's own code, manifest and pinned requirements, pushed as one archive.

`manifest` reads and checks `darkroom.yaml`; `archive` reads uploaded archives safely and packs
them canonically (same files -> same bytes -> same hash); `environments` builds and caches the
virtualenv a bundle runs in. The CLI and the server use the same checks.
"""

from darkroom.bundles.archive import Bundle, pack_dir, read_bundle, unpack
from darkroom.bundles.manifest import MANIFEST, Manifest

__all__ = ["MANIFEST", "Bundle", "Manifest", "pack_dir", "read_bundle", "unpack"]
