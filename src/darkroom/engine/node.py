"""`python -m darkroom.engine.node`: one run on a Ray node (a Ray job's entrypoint).

The Ray executor submits this with the claimed run in its environment. Here the run goes
through the local executor, as on a worker: prepared with this node's cache (model weights, a
bundle's environment built once per node), started in the bubblewrap sandbox under the run's
limits. Its output is shipped to the server in batches (every 0.1 s, or 500 lines) with the
run's token, and printed too, so Ray's own log of the job has it as well. SIGTERM (Ray
stopping the job: a cancel, a timeout) stops the run as a local cancel does; so does the server
saying the run is no longer running (its worker died and it was failed as lost), which the node
asks every 5 s: a run nobody watches does not go on spending the cluster. The process exits
with the run's exit code (128 + N for a signal), which the worker reads back from Ray.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time

from darkroom.client import ApiError, Client
from darkroom.db.models import utcnow
from darkroom.domain.resources import RunResources
from darkroom.domain.runs import Claimed
from darkroom.engine.executors.base import OutputLine
from darkroom.engine.executors.local import LocalExecutor

__all__ = ["LogShipper", "main"]

log = logging.getLogger("darkroom.node")

SHIP_EVERY_S = 0.1
SHIP_BATCH = 500
CANCEL_GRACE_S = 2.0  # Ray kills the node 3 s after its SIGTERM
CHECK_EVERY_S = 5.0


class LogShipper:
    """Batches a run's output lines and posts them; a batch that fails is kept and retried
    (after a 1 s pause), up to 50,000 lines, beyond which the oldest are dropped (and said)."""

    def __init__(self, client: Client, run_id: int) -> None:
        self.client = client
        self.run_id = run_id
        self.pending: list[OutputLine] = []
        self.last_ship = 0.0
        self.retry_at = 0.0
        self.dropped = 0
        self.closed = False  # the run's log is closed on the server: lines are dropped

    def add(self, lines: list[OutputLine]) -> None:
        if self.closed:
            return
        self.pending += lines
        if len(self.pending) > 50_000:
            self.dropped += len(self.pending) - 50_000
            self.pending = self.pending[-50_000:]

    def ship(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.pending or now < self.retry_at:
            return
        if not force and now - self.last_ship < SHIP_EVERY_S and len(self.pending) < SHIP_BATCH:
            return
        self.last_ship = now
        while self.pending:
            batch = self.pending[:SHIP_BATCH]
            rows = [(x.ts.isoformat(), x.stream, x.text) for x in batch]
            if self.dropped:
                lost = f"{self.dropped} lines lost: the server did not answer"
                rows.insert(0, (batch[0].ts.isoformat(), "system", lost))
            try:
                self.client.ship_run_output(self.run_id, rows)
            except Exception as exc:  # the server away, an answer lost: the batch stays
                log.warning("could not ship run %s's output (%s); retrying", self.run_id, exc)
                self.retry_at = now + 1.0
                return
            self.dropped = 0
            del self.pending[: len(batch)]


def still_running(client: Client, run_id: int) -> bool:
    """False once the server ended the run (its token then stops working); True when the
    server cannot be asked (a restart is not a reason to stop)."""
    try:
        return client.get_run(run_id)["status"] == "running"
    except ApiError as exc:
        return exc.status not in (401, 403, 404)
    except Exception:
        return True


def _sandbox_uid() -> int | None:
    value = os.environ.pop("DARKROOM_SANDBOX_UID", "")
    return int(value) if value.isdigit() else None


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    url = os.environ["DARKROOM_URL"]
    token = os.environ.pop("DARKROOM_RUN_TOKEN")
    claimed = Claimed(**{**json.loads(os.environ.pop("DARKROOM_CLAIMED")), "token": token})
    defaults = RunResources(**json.loads(os.environ.pop("DARKROOM_RUN_DEFAULTS", "{}")))
    executor = LocalExecutor(
        sandbox_mode=os.environ.get("DARKROOM_SANDBOX", "bwrap"), defaults=defaults,
        instance=f"ray-{os.getpid()}", standby=False, sandbox_uid=_sandbox_uid(),
    )  # fmt: skip
    woken = threading.Event()
    executor.notify = woken.set
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: (stop.set(), woken.set()))

    with Client(url, token) as client:
        shipper = LogShipper(client, claimed.run_id)
        node = os.uname().nodename
        shipper.add([OutputLine(utcnow(), "system", f"run {claimed.run_id} on Ray node {node}")])
        handle = executor.start(claimed, url)
        stopping = False
        last_stderr = ""
        next_check = time.monotonic() + CHECK_EVERY_S
        while True:
            if not stopping and time.monotonic() >= next_check:
                next_check = time.monotonic() + CHECK_EVERY_S
                if not still_running(client, claimed.run_id):
                    log.warning("run %s ended on the server (lost?): stopping it", claimed.run_id)
                    shipper.closed, shipper.pending = True, []
                    stopping = True
                    executor.cancel(handle, CANCEL_GRACE_S)
            if stop.is_set() and not stopping:
                stopping = True
                said = "Ray stopped the job: stopping the run"
                shipper.add([OutputLine(utcnow(), "system", said)])
                executor.cancel(handle, CANCEL_GRACE_S)
            lines = executor.drain(handle)
            for line in lines:
                sys.stdout.write(line.text + "\n")  # Ray's log of the job: the fallback
                if line.stream == "stderr" and line.text.strip():
                    last_stderr = line.text.strip()
            sys.stdout.flush()
            shipper.add(lines)
            code = executor.poll(handle)
            if code is not None:
                break
            shipper.ship()
            woken.wait(0.05)
            woken.clear()
        lines = executor.drain(handle)
        shipper.add(lines)
        why = executor.failure_reason(handle, code, last_stderr)
        if why:  # a limit it ran into: the line the worker's summary reads
            shipper.add([OutputLine(utcnow(), "stderr", f"darkroom: run {claimed.run_id} {why}")])
        deadline = time.monotonic() + 30
        while shipper.pending and time.monotonic() < deadline:
            shipper.ship(force=True)
            if shipper.pending:
                time.sleep(0.5)
    executor.close()
    return 128 - code if code < 0 else min(code, 255)


if __name__ == "__main__":
    sys.exit(main())
