"""Where a bundle revision's code is, for the runtime that runs it.

The executor prepares a bundle before its run starts (`darkroom.engine.preparation`): unpacked
read-only once per hash under `$DARKROOM_CACHE/bundles/<sha256>`, its environment built for its
pinned requirements. It then starts the runtime with that environment's interpreter and names
the folder in `DARKROOM_BUNDLE_DIR`; the runtime only imports from it.
"""

__all__ = ["BUNDLE_DIR_ENV"]

BUNDLE_DIR_ENV = "DARKROOM_BUNDLE_DIR"
