"""What pgBackRest says, read: `pgbackrest info --output=json` as records, its status codes, the cause in
its error output, network errors of a repository probe in words, and WAL segment arithmetic."""

import json
import re
import socket
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .base import BackupError, BackupInfo, Repository

# `pgbackrest info` status codes (src/command/info/info.c).
STATUS_OK = 0
STATUS_MISSING_STANZA_PATH = 1
STATUS_NO_BACKUP = 2
STATUS_MISSING_STANZA_DATA = 3
# What pgBackRest says when it could not talk to a repository at all (as opposed to a refusal by it).
UNREACHABLE_MARKERS = ("HostConnectError", "TLS error", "unable to connect", "ServiceError", "HostAddressError")


def parse_info(text: str, *, stanza: str) -> list[BackupInfo]:
    """`pgbackrest info --output=json` as BackupInfo records, oldest first."""
    return parse_info_json(load_info(text), stanza=stanza)


def load_info(text: str) -> list:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BackupError(f"pgbackrest info returned invalid JSON: {exc}") from exc


def parse_info_json(stanzas: list, *, stanza: str) -> list[BackupInfo]:
    backups = []
    for entry in stanzas:
        if entry.get("name") != stanza:
            continue
        for item in entry.get("backup", []):
            timestamps = item.get("timestamp", {})
            info = item.get("info", {})
            repository = info.get("repository") or {}
            archive = item.get("archive") or {}
            lsn = item.get("lsn") or {}
            incremental = item["type"] != "full"
            backups.append(
                BackupInfo(
                    label=item["label"],
                    kind=item["type"],
                    started_at=_from_epoch(timestamps.get("start")),
                    stopped_at=_from_epoch(timestamps.get("stop")),
                    size_bytes=info.get("size"),
                    repo_size_bytes=repository.get("size"),
                    delta_bytes=info.get("delta") if incremental else None,
                    repo_delta_bytes=repository.get("delta") if incremental else None,
                    wal_start=archive.get("start") or "",
                    wal_stop=archive.get("stop") or "",
                    lsn_start=lsn.get("start") or "",
                    lsn_stop=lsn.get("stop") or "",
                    error=bool(item.get("error")),
                    repo=(item.get("database") or {}).get("repo-key", 1),
                    extra={"prior": item.get("prior"), "reference": item.get("reference") or []},
                )
            )
    return sorted(backups, key=lambda b: (b.started_at or datetime.min.replace(tzinfo=UTC), b.label))


def _from_epoch(value) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if value else None


@dataclass
class RepoState:
    """What `pgbackrest info --repo=N` says about one repository."""

    repository: Repository
    status_code: int
    status: str
    backups: list[BackupInfo] = field(default_factory=list)
    archive_min: str = ""
    archive_max: str = ""


def describe_network_error(reason) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError | socket.timeout):
        return "no answer (timed out)"
    # A TLS proxy whose service is down accepts the connection, then closes it (during or after the
    # handshake): say that, not what the TLS library made of it.
    if isinstance(reason, ConnectionResetError | ConnectionAbortedError | ssl.SSLEOFError) or "EOF" in str(reason):
        return "the connection was closed without an answer (the service behind the endpoint is down)"
    if isinstance(reason, ssl.SSLError):
        return f"TLS handshake failed ({reason.reason or reason})"
    if isinstance(reason, socket.gaierror):
        return f"name not resolved ({reason.strerror})"
    return str(reason) or reason.__class__.__name__


def pgbackrest_cause(stderr: str) -> str:
    """The first line of pgBackRest's output that says what went wrong, without its error number."""
    for line in stderr.splitlines():
        line = line.strip()
        if any(marker in line for marker in UNREACHABLE_MARKERS):
            return re.sub(r"^.*?(\[\w+\])", r"\1", line)[:500]
    return stderr.strip().splitlines()[-1][:500] if stderr.strip() else "no output"


def segment_number(walfile: str) -> int:
    # 24 hex digits: timeline, log, segment (16 MB segments: 256 per log).
    name = walfile.split(".")[0][:24]
    return int(name[8:16], 16) * 256 + int(name[16:24], 16)
