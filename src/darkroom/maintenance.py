"""Housekeeping a server does on its own every few hours: predictions past their deployment's
retention are deleted, then blob garbage collection runs.

Files of refused uploads, killed imports and refused models, and blobs nothing references any
more, are deleted once older than the grace period (`darkroom admin gc` does the same at once).
"""

from __future__ import annotations

import logging
import threading

from darkroom.db.engine import SessionFactory, session_scope
from darkroom.domain.blobs import collect_garbage
from darkroom.domain.predictions import purge_expired
from darkroom.storage import BlobStore

__all__ = ["PeriodicGC"]

log = logging.getLogger(__name__)


class PeriodicGC:
    """Collects garbage every `interval_s` in a daemon thread, first after one interval."""

    def __init__(
        self, sessions: SessionFactory, store: BlobStore, interval_s: float, grace_s: float
    ) -> None:
        self.sessions, self.store = sessions, store
        self.interval_s, self.grace_s = interval_s, grace_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="darkroom-blob-gc", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                with session_scope(self.sessions, write=True) as session:
                    purged = purge_expired(session)
                if purged:
                    log.info("deleted %d predictions past their retention", purged)
                with session_scope(self.sessions, write=True) as session:
                    collect_garbage(session, self.store, grace_s=self.grace_s)
            except Exception:
                log.exception("blob garbage collection failed")
