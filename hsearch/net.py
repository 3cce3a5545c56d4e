"""Network helpers (pure Python)."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` (loopback by default) right now.

    The port is found by binding to port 0 and closing the socket, so another process may
    take it before the caller binds it: use it at once.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]
