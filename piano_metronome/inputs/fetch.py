"""Bring the manifest's recordings into the raw folder, verified, from their source or a local copy.

A file appears under its final name only after its size and sha256 match the manifest: it is
written to a hidden temp file in the same folder (so ``os.replace`` is atomic) and the temp file
is removed on any failure. Every failure is a :class:`FetchError` with a one-line reason, so
the command can list them all and still fetch the rest.
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from piano_metronome.inputs.manifest import ManifestRow, sha256_file
from piano_metronome.inputs.midi import RecordingError

DEFAULT_TIMEOUT_S = 10.0
USER_AGENT = "piano-metronome-fetch"


class FetchError(Exception):
    """One file could not be brought in; the message is the one-line reason.

    ``host_down`` marks failures of the connection itself (no route, no DNS, no answer), after
    which the same host is not tried again.
    """

    def __init__(self, reason: str, host_down: bool = False) -> None:
        super().__init__(reason)
        self.host_down = host_down


@dataclass
class FetchSummary:
    """What a fetch did, file by file: the command prints it and sets the exit code from it."""

    fetched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def file_problem(path: Path, row: ManifestRow) -> str | None:
    """Why ``path`` is not the manifest's file (missing, size, sha256), or None when it is."""
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    if size != row.size:
        return f"size is {size} bytes but the manifest says {row.size}"
    digest = sha256_file(path)
    if digest != row.sha256:
        return f"sha256 {digest[:12]}… does not match the manifest's {row.sha256[:12]}…"
    return None


def _check_bytes(data: bytes, row: ManifestRow) -> None:
    """Refuse data whose size or sha256 is not the manifest's."""
    if len(data) != row.size:
        raise FetchError(f"size is {len(data)} bytes but the manifest says {row.size}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != row.sha256:
        raise FetchError(f"sha256 {digest[:12]}… does not match the manifest's {row.sha256[:12]}…")


def read_local(row: ManifestRow, source_dir: Path) -> bytes:
    """The bytes of ``source_dir/<subset>/<file>``, at most one byte more than the manifest's size."""
    src = row.path(source_dir)
    try:
        with open(src, "rb") as handle:
            return handle.read(row.size + 1)
    except FileNotFoundError:
        raise FetchError(f"not found in {source_dir} (looked for {src})") from None
    except OSError as exc:
        raise FetchError(f"cannot read {src} ({exc.strerror or exc})") from None


def _urlopen_read(url: str, limit: int, timeout: float) -> bytes:
    """GET ``url`` and read at most ``limit`` bytes; the socket timeout bounds each wait."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        data: bytes = response.read(limit)  # typeshed types urlopen's response as Any
        return data


def _describe_url_error(exc: BaseException, url: str, timeout: float) -> tuple[str, bool]:
    """A one-line reason for a download failure, and whether the host itself is unreachable."""
    host = urlsplit(url).netloc
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason} from {url}", False
    if isinstance(exc, (TimeoutError, socket.timeout)) or "timed out" in str(exc):
        return f"no answer from {host} within {timeout:g} s (no network?)", True
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        text = getattr(reason, "strerror", None) or str(reason)
        return f"cannot reach {host} ({text}; no network?)", True
    return f"download from {host} failed ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})", True


def download(url: str, limit: int, timeout: float = DEFAULT_TIMEOUT_S) -> bytes:
    """Download ``url`` within ``timeout`` seconds overall, or raise :class:`FetchError`.

    The request runs in a daemon thread so a stalled DNS lookup (which socket timeouts do not
    cover) cannot hold the command: with no network it fails within the timeout.
    """
    if urlsplit(url).scheme not in ("http", "https"):
        raise FetchError(f"source address {url!r} is not http(s)")
    result: dict[str, object] = {}

    def work() -> None:
        try:
            result["data"] = _urlopen_read(url, limit, timeout)
        except BaseException as exc:  # handed to the caller's thread below
            result["error"] = exc

    worker = threading.Thread(target=work, name=f"fetch {url}", daemon=True)
    worker.start()
    worker.join(timeout + 1.0)
    if worker.is_alive():
        raise FetchError(f"no answer from {urlsplit(url).netloc} within {timeout:g} s (no network?)", True)
    if "error" in result:
        reason, host_down = _describe_url_error(result["error"], url, timeout)  # type: ignore[arg-type]
        raise FetchError(reason, host_down)
    return result["data"]  # type: ignore[return-value]


def _file_mode() -> int:
    """The mode a newly created file gets under the current umask (0644 under the usual 022)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def install(data: bytes, row: ManifestRow, dest: Path) -> None:
    """Write ``data`` to a temp file beside ``dest``, verify it on disk, then rename it into place.

    The rename is atomic within one folder, so ``dest`` is either absent, the old file, or the
    verified new one — never a partial write; the temp file is removed on any failure.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _file_mode())  # mkstemp makes it owner-only; a fetched file is an ordinary file
        problem = file_problem(tmp, row)
        if problem:
            raise FetchError(f"written copy is wrong: {problem}")
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class Fetcher:
    """Fetches rows one by one, remembering hosts that could not be reached.

    After one connection failure the same host is not tried again, so a machine with no
    network lists every file's failure within seconds instead of waiting per file.
    """

    def __init__(self, raw: Path, source_dir: Path | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                 force: bool = False) -> None:
        self.raw = raw
        self.source_dir = source_dir
        self.timeout = timeout
        self.force = force
        self.down_hosts: dict[str, str] = {}

    def source_bytes(self, row: ManifestRow) -> bytes:
        """The file's bytes from ``--from`` if given, else from its source address."""
        if self.source_dir is not None:
            return read_local(row, self.source_dir)
        if not row.source_url:
            raise FetchError("the manifest gives no source address; use --from DIR")
        host = urlsplit(row.source_url).netloc
        if host in self.down_hosts:
            raise FetchError(f"not tried: {self.down_hosts[host]}")
        try:
            return download(row.source_url, row.size + 1, self.timeout)
        except FetchError as exc:
            if exc.host_down:
                self.down_hosts[host] = str(exc)
            raise

    def fetch(self, row: ManifestRow) -> str:
        """Bring one row in; returns ``skipped``, ``fetched`` or ``replaced``, else raises FetchError."""
        try:
            dest = row.path(self.raw)
        except RecordingError as exc:
            raise FetchError(exc.reason) from None
        problem = file_problem(dest, row)
        if problem is None:
            return "skipped"
        if problem != "missing" and not self.force:  # a file we did not put there: never replaced silently
            raise FetchError(f"{dest} exists and is not the manifest's file ({problem}); pass --force to replace it")
        data = self.source_bytes(row)
        _check_bytes(data, row)
        try:
            install(data, row, dest)
        except OSError as exc:
            raise FetchError(f"cannot write {dest} ({exc.strerror or exc})") from None
        return "fetched" if problem == "missing" else "replaced"


def conflicts(rows: Iterable[ManifestRow], raw: Path) -> list[tuple[Path, str]]:
    """Files already at a manifest path that are not the manifest's file: (path, why), in manifest order.

    ``fetch`` never wrote such a file (it installs only verified copies), so it is the user's (or
    from an older manifest) and is not replaced without ``--force``. A folder at a file's path is
    listed too, with ``is a folder`` as its reason.
    """
    found = []
    for row in rows:
        try:
            dest = row.path(raw)
        except RecordingError:
            continue  # reported per file by fetch
        if dest.is_dir():
            found.append((dest, "is a folder"))
            continue
        problem = file_problem(dest, row)
        if problem not in (None, "missing"):
            found.append((dest, problem))
    return found


def present_in(rows: Iterable[ManifestRow], source_dir: Path) -> int:
    """How many of the rows' files exist under ``source_dir/<subset>/``: 0 means a wrong ``--from``."""
    count = 0
    for row in rows:
        try:
            count += row.path(source_dir).is_file()
        except RecordingError:
            continue
    return count


def fetch_all(
    rows: Iterable[ManifestRow],
    fetcher: Fetcher,
    on_done: Callable[[ManifestRow, str, str], None] | None = None,
) -> FetchSummary:
    """Fetch every row, never stopping at a failure; ``on_done(row, status, reason)`` reports each."""
    summary = FetchSummary()
    for row in rows:
        name = row.relative_name
        try:
            status, reason = fetcher.fetch(row), ""
        except FetchError as exc:
            status, reason = "failed", str(exc)
            summary.failed[name] = reason
        if status == "skipped":
            summary.skipped.append(name)
        elif status in ("fetched", "replaced"):
            summary.fetched.append(name)
            if status == "replaced":
                summary.replaced.append(name)
        if on_done is not None:
            on_done(row, status, reason)
    return summary
