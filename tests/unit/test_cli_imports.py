"""The CLI talks to a server: it must not load the server (FastAPI, SQLAlchemy, onnxruntime),
which made every `darkroom` command take 2-3 s before it did anything."""

from __future__ import annotations

import subprocess
import sys

SERVER_MODULES = ("fastapi", "sqlalchemy", "onnxruntime", "alembic", "uvicorn")

PROBE = """
import sys
from darkroom.cli.main import app
try:
    app(sys.argv[1:])
except SystemExit:
    pass
print("LOADED", ",".join(m for m in %r if m in sys.modules))
"""


def test_client_commands_load_no_server_module():
    for args in (["--help"], ["job", "list", "--help"], ["deployment", "predict", "--help"]):
        command = [sys.executable, "-c", PROBE % (SERVER_MODULES,), *args]
        out = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
        loaded = out.stdout.rsplit("LOADED", 1)[1].strip()
        assert loaded == "", f"darkroom {' '.join(args)} loads {loaded}"
