"""A TCP relay that plays a flaky network between the service and PostgreSQL or Redis.

Modes: `forward` (pass bytes both ways), `refuse` (close every connection and refuse new ones:
a server that is down), `blackhole` (keep connections open and accept new ones, but pass
nothing: a silent partition, where a client waits until its own timeout). Used by the fault
drill (`bench/faults.py`) and the fault tests.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

__all__ = ["Relay", "free_port"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class Relay:
    def __init__(self, upstream: tuple[str, int], port: int | None = None) -> None:
        self.upstream = upstream
        self.port = port or free_port()
        self.mode = "forward"
        self._listener: socket.socket | None = None
        self._pairs: set[tuple[socket.socket, socket.socket | None]] = set()
        self._lock = threading.Lock()
        self._open = threading.Event()  # set while bytes may pass

    # --- modes -------------------------------------------------------------------------------

    def start(self) -> None:
        """Forward from now on (listening again if the relay was refusing)."""
        with self._lock:
            self.mode = "forward"
            if self._listener is None:
                listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind(("127.0.0.1", self.port))
                listener.listen(256)
                self._listener = listener
                threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
            self._open.set()

    def refuse(self) -> None:
        """The server is down: every connection is closed, new ones are refused."""
        with self._lock:
            self.mode = "refuse"
            self._open.set()  # let blocked pipes notice their sockets closing
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            for client, server in self._pairs:
                _close(client)
                if server is not None:
                    _close(server)
            self._pairs.clear()

    def blackhole(self) -> None:
        """A silent partition: connections stay open (and new ones are accepted) but no byte
        passes in either direction until `start` is called again."""
        with self._lock:
            self.mode = "blackhole"
            self._open.clear()

    def stop(self) -> None:
        self.refuse()

    # --- plumbing ------------------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connect, args=(listener, client), daemon=True).start()

    def _connect(self, listener: socket.socket, client: socket.socket) -> None:
        while not self._open.wait(0.2):
            if self._listener is not listener:
                _close(client)
                return
        try:
            server = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            _close(client)
            return
        server.settimeout(None)
        with self._lock:
            if self._listener is not listener:
                _close(client)
                _close(server)
                return
            self._pairs.add((client, server))
        threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()
        threading.Thread(target=self._pipe, args=(server, client), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                # In a partition the bytes are held back, as a dead link holds them.
                while not self._open.wait(0.2):
                    pass
                if self.mode == "refuse":
                    break
                target.sendall(data)
        except OSError:
            pass
        _close(source)
        _close(target)


def _main() -> None:  # pragma: no cover - a manual tool
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("upstream", help="host:port")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    host, _, port = args.upstream.rpartition(":")
    relay = Relay((host, int(port)), args.port or None)
    relay.start()
    print(f"relay on 127.0.0.1:{relay.port} -> {args.upstream}; Ctrl-C to stop", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)


if __name__ == "__main__":  # pragma: no cover
    _main()
