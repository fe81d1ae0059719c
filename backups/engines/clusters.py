"""Local PostgreSQL clusters started from a backup (restores and drills): free ports, and whether a
postmaster runs on a data directory."""

import os
import socket
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def running_postmaster(data_dir: Path) -> int | None:
    """The pid of a PostgreSQL running on data_dir, from its postmaster.pid (None when none runs)."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return pid
    # A stale file whose pid was reused by another program does not count.
    return pid if name in ("postgres", "postmaster") else None


def log_tail(path: Path, lines: int = 40) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []
