"""`python -m darkroom.runtime`: runs the processing of the run named by the environment.

`--standby [--load MODULE]`: started by the executor before its run exists, this process does
its imports (and a built-in processing's module, a likely next run), then waits for one line on
stdin naming the run (`{"token": ..., "env": {...}}`) and goes on as a runtime started for that
run would; stdin is /dev/null from then on.

Exit codes: 0 succeeded, 1 the processing raised (traceback on stderr, its last line is the
run's error summary), 2 the run could not be set up.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import linecache
import logging
import os
import runpy
import sys
import traceback
import types
from collections.abc import Callable
from typing import Any

from darkroom.runtime.context import ProcessingContext
from darkroom.sources import BuiltinSource, BundleSource, InlineSource, Source, parse_source


def load_entrypoint(source: Source) -> Callable[[ProcessingContext], Any]:
    if isinstance(source, BuiltinSource):
        return importlib.import_module(source.module).run
    if isinstance(source, BundleSource):
        from darkroom.runtime.prepared import BUNDLE_DIR_ENV

        root = os.environ.get(BUNDLE_DIR_ENV)
        if root is None:
            raise RuntimeError(f"a bundle runs with {BUNDLE_DIR_ENV} set by its executor")
        sys.path.insert(0, root)
        entrypoint = source.entrypoint
        if entrypoint.endswith(".py") and ":" not in entrypoint:  # a script, run as __main__
            script = os.path.join(root, entrypoint)
            return lambda ctx: runpy.run_path(script, run_name="__main__")
        module_name, _, function = entrypoint.partition(":")
        return getattr(importlib.import_module(module_name), function)
    if isinstance(source, InlineSource):
        module = types.ModuleType("processing")
        module.__file__ = "processing.py"
        sys.modules["processing"] = module
        text = source.code
        # Tracebacks then quote the processing's own lines, as for a file on disk.
        linecache.cache["processing.py"] = (len(text), None, text.splitlines(True), "processing.py")
        code = compile(text, "processing.py", "exec")
        exec(code, module.__dict__)
        return getattr(module, source.function)
    raise RuntimeError(f"this runtime cannot run sources of kind {source.kind!r}")


RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))
IMPORTLIB_DIR = os.path.dirname(os.path.abspath(importlib.__file__))


def _outside_user_code(filename: str) -> bool:
    """The runtime's own files and the import machinery that loads the processing: darkroom's
    and Python's install paths, nothing the author can act on."""
    path = os.path.abspath(filename)
    return (path.startswith(RUNTIME_DIR + os.sep) or path.startswith(IMPORTLIB_DIR + os.sep)
            or filename.startswith("<frozen importlib"))  # fmt: skip


def print_user_traceback(exc: BaseException | None) -> None:
    """The traceback from the processing's own code down (its entry point, or the line of it
    an import failed on): the frames above it are left out."""
    if exc is None:
        return
    tb = exc.__traceback__
    while tb is not None and _outside_user_code(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb or exc.__traceback__, file=sys.stderr)


STANDBY_TOKEN_FILE = "/tmp/.darkroom-run-token"
BUILTIN_PACKAGE = "darkroom.processings."


def await_run(load: str | None = None) -> bool:
    """Standby: waits for the run this process executes and sets its environment as the
    executor would have. False when the executor went away without sending one."""
    import cv2  # noqa: F401 - the first JPEG a run decodes would load it

    if load is not None and load.startswith(BUILTIN_PACKAGE):
        with contextlib.suppress(Exception):  # its run, if it comes, reports any error
            module = importlib.import_module(load)
            for name in getattr(module, "PRELOAD", ()):
                importlib.import_module(name)

    line = sys.stdin.buffer.readline()
    if not line.strip():
        return False
    order = json.loads(line)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    fd = os.open(STANDBY_TOKEN_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(order["token"])
    os.environ.update(order["env"], DARKROOM_RUN_TOKEN_FILE=STANDBY_TOKEN_FILE)
    return True


def main(argv: list[str] | None = None) -> int:
    # Log records go to stdout, the pipe `print` writes to: one pipe keeps them in the order
    # they were written (two pipes are read apart). stderr is left to tracebacks.
    logging.basicConfig(
        level=logging.INFO, stream=sys.stdout, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        args = sys.argv[1:] if argv is None else argv
        load = args[args.index("--load") + 1] if "--load" in args[:-1] else None
        if "--standby" in args and not await_run(load):
            return 0
        ctx = ProcessingContext.from_env()
    except Exception:
        traceback.print_exc()
        return 2
    try:
        entry = load_entrypoint(parse_source(ctx.processing.source, strict=False))
    except Exception:  # the processing's code does not load: its error, from its own lines
        print_user_traceback(sys.exc_info()[1])
        return 2
    # What is loaded by now lives until exit: out of the collector's sight, the run's own
    # collections scan less, and the interpreter's exit takes 15 ms instead of 80.
    gc.freeze()
    targets = []
    if ctx.deployment is not None:
        targets.append(f"deployment {ctx.deployment.name}")
    if ctx.input_version is not None:
        targets.append(f"version {ctx.input_version.id}")
    if ctx.model_version is not None:
        targets.append(f"model version {ctx.model_version.id}")
    ctx.log.info(
        "run %s: %s revision %s on %s, parameters %s",
        ctx.run_id, ctx.processing.name, ctx.processing.revision,
        " with ".join(targets) or "nothing", ctx.parameters,
    )  # fmt: skip
    try:
        entry(ctx)
        ctx.flush()  # writes queued by the processing are part of its work
    except Exception:
        with contextlib.suppress(Exception):
            ctx.flush()  # what was done before the failure is kept: a resumed re-run skips it
        print_user_traceback(sys.exc_info()[1])  # last: its last line is the error summary
        return 1
    finally:
        sys.stdout.flush()
        gc.freeze()  # what the processing loaded: the exit need not collect it either
    if (summary := ctx.data_path_summary()) is not None:
        ctx.log.info("%s", summary)
    if ctx.failures:
        ctx.log.warning("%d items failed", ctx.failures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
