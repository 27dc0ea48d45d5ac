"""A Unix socket that relays to the darkroom server: a sandboxed run's only way out when its
executor is a `darkroom worker` (`darkroom serve` listens on such a socket itself).

A sandbox has its own network namespace with nothing but loopback, so it cannot reach the
server's TCP port (nor anything else). The executor binds this socket outside, mounts it into
each sandbox, and relays every connection to the server's address, byte for byte: the run's
HTTP requests carry its run token as they would over TCP, and the server scopes them the same.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["SocketRelay"]

log = logging.getLogger(__name__)
CHUNK = 256 * 1024


class SocketRelay:
    """Listens on `path` and relays each connection to `server_url`'s host and port."""

    def __init__(self, path: Path, server_url: str) -> None:
        parts = urlsplit(server_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the run relay forwards plain http only, not {server_url!r}")
        self.path = path
        self.target = (parts.hostname, parts.port or 80)
        self._listener: socket.socket | None = None
        self._closed = threading.Event()

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        os.chmod(self.path, 0o666)  # runs may use another uid inside their user namespace
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, name="darkroom-run-relay", daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError as exc:
            log.warning("run relay: cannot reach the server at %s:%s: %s", *self.target, exc)
            client.close()
            return
        upstream.settimeout(None)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        _pump(client, upstream)
        back.join()
        client.close()
        upstream.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copies until `source` closes, then half-closes `sink` so the other side sees the end."""
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    try:
        while True:
            n = source.recv_into(buffer)
            if n == 0:
                break
            sink.sendall(view[:n])
    except OSError:
        pass
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
