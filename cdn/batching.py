"""Turn requested paths into as few provider requests as the provider allows.

Duplicates collapse, paths covered by a wildcard disappear, a directory with more than
`threshold` paths beneath it becomes one wildcard (the deepest such directory first, so a
wildcard purges no more than it must), and the result is cut into requests that respect the
provider's per-request path and wildcard limits.
"""

from collections import Counter

from .paths import MAX_PATH_LENGTH, InvalidPath, canonical_path  # noqa: F401 - the batching module's names


def normalize_path(path: str) -> str:
    """A requested path in its canonical form (cdn.paths); surrounding whitespace is dropped."""
    return canonical_path(path.strip() if isinstance(path, str) else path)


def _directory(path: str) -> str:
    """The directory a path lives in: /a/b.html -> /a/ ; /a/b/* -> /a/ ; /a/ -> /."""
    trimmed = path[:-1] if path.endswith("*") else path
    trimmed = trimmed.rstrip("/") or "/"
    return trimmed[: trimmed.rfind("/") + 1]


def _ancestors(path: str):
    """Directories containing path, deepest first; a wildcard /a/* lives in /a/ and above."""
    current = path[:-1] if path.endswith("*") else path
    while current != "/":
        current = current[: current.rstrip("/").rfind("/") + 1] if not current.endswith("/") else _directory(current)
        yield current


def _remove_covered(paths: set[str]) -> set[str]:
    wildcards = {path[:-1] for path in paths if path.endswith("*")}
    if "/" in wildcards:
        return {"/*"}
    kept = set()
    for path in paths:
        own = path[:-1] if path.endswith("*") else None
        if any(path.startswith(prefix) and prefix != own for prefix in wildcards):
            continue
        kept.add(path)
    return kept


def collapse_paths(paths, *, threshold: int | None = 100, max_wildcards: int | None = None) -> list[str]:
    """Deduplicate and collapse paths; None threshold disables collapsing into wildcards."""
    current = _remove_covered({normalize_path(path) for path in paths})
    while threshold is not None:
        counts = Counter(directory for path in current for directory in _ancestors(path))
        crowded = [directory for directory, count in counts.items() if count > threshold]
        if not crowded:
            break
        # The deepest crowded directory first, so "/blog/2024/*" wins over "/blog/*" when enough.
        deepest = max(crowded, key=lambda directory: (directory.count("/"), directory))
        current = _remove_covered({path for path in current if not path.startswith(deepest)} | {deepest + "*"})
    if max_wildcards is not None:
        current = _limit_wildcards(current, max_wildcards)
    return sorted(current)


def _limit_wildcards(paths: set[str], max_wildcards: int) -> set[str]:
    """Merge wildcards upward (the crowded parent first) until at most max_wildcards remain."""
    while sum(1 for path in paths if path.endswith("*")) > max_wildcards:
        parents = Counter(_directory(path) for path in paths if path.endswith("*") and path != "/*")
        if not parents:
            break
        parent = max(parents, key=lambda directory: (parents[directory], directory.count("/")))
        paths = _remove_covered({path for path in paths if not path.startswith(parent)} | {parent + "*"})
    return paths


def chunk_paths(paths: list[str], *, max_paths: int | None = None, max_wildcards: int | None = None) -> list[list[str]]:
    """Cut paths into requests holding at most max_paths paths and max_wildcards wildcards each."""
    chunks: list[list[str]] = []
    current: list[str] = []
    wildcards = 0
    for path in paths:
        is_wildcard = path.endswith("*")
        full = (max_paths is not None and len(current) >= max_paths) or (
            is_wildcard and max_wildcards is not None and wildcards >= max_wildcards
        )
        if full and current:
            chunks.append(current)
            current, wildcards = [], 0
        current.append(path)
        wildcards += is_wildcard
    if current:
        chunks.append(current)
    return chunks


def plan_requests(paths, backend, *, threshold: int | None = 100) -> list[list[str]]:
    """The provider requests for paths on a backend, within its declared limits."""
    if not backend.supports_wildcards:
        threshold = None
    collapsed = collapse_paths(paths, threshold=threshold, max_wildcards=backend.max_wildcards_in_progress)
    return chunk_paths(
        collapsed, max_paths=backend.max_paths_per_request, max_wildcards=backend.max_wildcards_per_request
    )
