"""`python -m darkroom.runtime`: runs the processing of the run named by the environment.

Exit codes: 0 succeeded, 1 the processing raised (traceback on stderr, its last line is the
run's error summary), 2 the run could not be set up.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import runpy
import sys
import traceback
import types
from collections.abc import Callable
from typing import Any

from darkroom.runtime.context import ProcessingContext


def load_entrypoint(source: dict[str, Any]) -> Callable[[ProcessingContext], Any]:
    kind = source.get("kind")
    if kind == "builtin":
        return importlib.import_module(source["module"]).run
    if kind == "bundle":
        from darkroom.runtime.prepared import BUNDLE_DIR_ENV

        root = os.environ.get(BUNDLE_DIR_ENV)
        if root is None:
            raise RuntimeError(f"a bundle runs with {BUNDLE_DIR_ENV} set by its executor")
        sys.path.insert(0, root)
        entrypoint = source["entrypoint"]
        if entrypoint.endswith(".py") and ":" not in entrypoint:  # a script, run as __main__
            script = os.path.join(root, entrypoint)
            return lambda ctx: runpy.run_path(script, run_name="__main__")
        module_name, _, function = entrypoint.partition(":")
        return getattr(importlib.import_module(module_name), function)
    if kind == "inline":
        module = types.ModuleType("processing")
        module.__file__ = "processing.py"
        sys.modules["processing"] = module
        code = compile(source["code"], "processing.py", "exec")
        exec(code, module.__dict__)
        return getattr(module, source.get("entrypoint", "run"))
    raise RuntimeError(f"this runtime cannot run sources of kind {kind!r}")


def main() -> int:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        ctx = ProcessingContext.from_env()
        entry = load_entrypoint(ctx.processing.source)
    except Exception:
        traceback.print_exc()
        return 2
    ctx.log.info(
        "run %s: %s revision %s on version %s, parameters %s",
        ctx.run_id, ctx.processing.name, ctx.processing.revision,
        ctx.input_version.id, ctx.parameters,
    )  # fmt: skip
    try:
        entry(ctx)
        ctx.flush()  # writes queued by the processing are part of its work
    except Exception:
        with contextlib.suppress(Exception):
            ctx.flush()  # what was done before the failure is kept: a resumed re-run skips it
        traceback.print_exc()  # last: its last line is the run's error summary
        return 1
    finally:
        sys.stdout.flush()
    if (summary := ctx.data_path_summary()) is not None:
        ctx.log.info("%s", summary)
    if ctx.failures:
        ctx.log.warning("%d items failed", ctx.failures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
