"""A TCP proxy that slows every connection to a fixed rate in each direction: a slow
network between a worker and the API, so transfers can be made to outlast a lease."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

CHUNK = 8192
PAUSE = 0.5  # a flow with no data for this long has ended


class ThrottledProxy:
    """Forwards 127.0.0.1:<port> to ``target`` at ``rate`` bytes per second per direction.

    ``longest["up"]`` / ``longest["down"]`` are the longest continuous flows seen
    (client to target, target to client), in seconds: the proof that a transfer really
    took that long.
    """

    def __init__(self, target_port: int, rate: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.rate = rate
        self.longest = {"up": 0.0, "down": 0.0}
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> ThrottledProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed = True
        self._server.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for source, sink, direction in ((client, upstream, "up"), (upstream, client, "down")):
                threading.Thread(
                    target=self._pump, args=(source, sink, direction), daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket, direction: str) -> None:
        flow_start = last = 0.0
        try:
            while chunk := source.recv(CHUNK):
                now = time.monotonic()
                if now - last > PAUSE:
                    flow_start = now
                sink.sendall(chunk)
                time.sleep(len(chunk) / self.rate)
                last = time.monotonic()
                with self._lock:
                    self.longest[direction] = max(self.longest[direction], last - flow_start)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
