"""The export bundle on disk: content-addressed, written atomically, verified before use.

Layout (every path relative to the bundle folder, listed with its hash in ``manifest.json``)::

    views/<view>/<split>.jsonl                      planner_sft, planner_pref_pairs, worker_sft, verifier_sft,
                                                    verifier_pref_pairs
    views/worker_recovery_cases/sft/<split>.jsonl   failure → recovery decisions as SFT rows
    views/worker_recovery_cases/pairs/<split>.jsonl ... and as preference pairs
    agentlightning/triplets/<split>.jsonl           Agent Lightning Triplet rows (views.agentlightning)
    agentlightning/messages/<split>.jsonl           Agent Lightning messages (OpenAIMessages) rows of the role
                                                    SFT rows (views.agentlightning_messages)
    runs.jsonl                                      every source run: status, split, reasons count
    quarantine.jsonl                                quarantined runs with their reasons (no values)
    report.json, report.md                          the dataset report
    export_config.yaml                              the resolved export config (terms masked)
    README.md, features.json                        the dataset card (``datasets`` configs and features of every
                                                    view) and the features alone (``tracebridge.export.features``)
    manifest.json                                   written last; not part of the bundle id

``bundle_id`` = sha256 of the concatenated sha256 hex digests of the files, in manifest order
(sorted by path). No timestamps or absolute paths go into the files, so exporting the same
traces with the same config gives the same id. ``BundleWriter`` writes into a hidden temp
folder (``.bundle-<pid>@<host>-*``) and renames it to ``<out>/<bundle_id>`` at the end, so a reader never
sees half a bundle; the next export into ``<out>`` removes the temp folder of one that died.
``verify_bundle`` is what ``push``, ``fetch`` and training call before trusting one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import socket
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import orjson

from tracebridge.capture.writer import write_atomic
from tracebridge.pool_workers import pid_alive

log = logging.getLogger(__name__)
BUNDLE_FORMAT = "tracebridge-bundle/1"
MANIFEST = "manifest.json"


class BundleError(ValueError):
    """A bundle that must not be trusted: bad manifest, missing or changed file, unsafe path."""


@dataclass(frozen=True)
class FileEntry:
    path: str
    sha256: str
    rows: int | None
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        """The entry as written to the manifest's ``files``: ``{path, sha256, rows, bytes}``."""
        return {"path": self.path, "sha256": self.sha256, "rows": self.rows, "bytes": self.bytes}


@dataclass
class Manifest:
    """A parsed ``manifest.json``: id, files and everything else in ``data``."""

    bundle_id: str
    files: list[FileEntry]
    data: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        """A top-level manifest field, or ``default`` when absent."""
        return self.data.get(key, default)

    @property
    def governance(self) -> dict[str, Any]:
        """A copy of the manifest's ``data_governance`` (``{}`` when absent or not an object: a hand-edited
        ``"data_governance": "clean"`` claims nothing, and ``dict()`` of it was a traceback in ``push``)."""
        gov = self.data.get("data_governance")
        return dict(gov) if isinstance(gov, dict) else {}


def compute_bundle_id(sha256s: list[str]) -> str:
    """sha256 over the files' hex digests, in the given (manifest) order."""
    return hashlib.sha256("".join(sha256s).encode()).hexdigest()


def safe_relpath(path: Any, where: str = "path") -> str:
    """``path`` if it is a plain relative POSIX path inside the bundle.

    Raises:
        BundleError: absolute, ``..``, backslashes, empty, the folder itself (``.``) or not a string.
    """
    if not isinstance(path, str) or not path or "\\" in path or "\0" in path:
        raise BundleError(f"{where}: {path!r} is not a relative POSIX path")
    p = PurePosixPath(path)
    if not p.parts:  # '.', './': the folder itself (parts[0] below was an IndexError traceback)
        raise BundleError(f"{where}: {path!r} names the folder itself, not a file in it")
    if p.is_absolute() or ".." in p.parts or path.startswith("~") or p.parts[0].endswith(":"):
        raise BundleError(f"{where}: {path!r} escapes the bundle (absolute or '..')")
    if p.as_posix() != path:  # 'a/./b', 'a//b', 'a/': two spellings of one file could carry two hashes
        raise BundleError(f"{where}: {path!r} is not in normal form (write {p.as_posix()!r})")
    return path


def named(exc: OSError, path: Path) -> OSError:
    """``exc`` with ``path`` as its file name when it has none (a failed ``write`` names no file)."""
    if exc.filename is not None:
        return exc
    return type(exc)(exc.errno, exc.strerror or str(exc), str(path))


class _HashingFile:
    """A binary file that hashes and counts what goes through it."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # unbuffered: rows come a run's share at a time (~200 KB), and a buffer would copy them once more
        self.fh: IO[bytes] = open(path, "wb", buffering=0)  # noqa: SIM115 - closed in close()
        self.path = path
        self.sha = hashlib.sha256()
        self.rows = 0
        self.bytes = 0

    def write(self, data: bytes | memoryview, rows: int) -> None:
        """Append ``rows`` serialised rows (whole JSON lines, newlines included) held in ``data``:
        one hash update and one write for a run's share of a file, not one per row."""
        self.sha.update(data)
        view = memoryview(data)
        try:
            while view:  # an unbuffered write may write less than it was given
                view = view[self.fh.write(view):]
        except OSError as exc:  # a full disk: the error names the file (os.write's does not)
            raise named(exc, self.path) from exc
        self.bytes += len(data)
        self.rows += rows

    def write_lines(self, lines: list[bytes], size: int) -> None:
        """Append serialised rows, one line each (``size`` bytes in all), as ``write`` appends them joined:
        hashed one by one, written ``IOV_MAX`` at a time (``os.writev``), with no copy of them first."""
        if _IOV_MAX <= 1:  # no writev (Windows): joined, as before
            self.write(b"".join(lines), len(lines))
            return
        update, fd = self.sha.update, self.fh.fileno()
        for line in lines:
            update(line)
        try:
            for i in range(0, len(lines), _IOV_MAX):
                batch = lines[i:i + _IOV_MAX]
                done = os.writev(fd, batch)
                if done < sum(map(len, batch)):  # a short write (a disk filling up): the rest as ``write`` does
                    rest = memoryview(b"".join(batch))[done:]
                    while rest:
                        rest = rest[os.write(fd, rest):]
        except OSError as exc:  # a full disk: the error names the file (os.write's does not)
            raise named(exc, self.path) from exc
        self.bytes += size
        self.rows += len(lines)

    def close(self) -> None:
        # no fsync: a bundle torn by a crash fails verify_bundle (hashes) and is never trusted
        self.fh.close()


# buffers one ``os.writev`` takes; 0 or less (no writev, or no limit the system knows): lines are joined
_IOV_MAX = min(os.sysconf("SC_IOV_MAX"), 1024) if hasattr(os, "writev") and "SC_IOV_MAX" in getattr(
    os, "sysconf_names", {}) else 0
_TEMP = re.compile(r"^\.bundle-(\d+)@(.*)-[^-]+$")  # BundleWriter's temporary folder: .bundle-<pid>@<host>-<random>


def remove_dead_temps(out_dir: Path) -> list[Path]:
    """Remove the temporary folders that exports on this host left in ``out_dir`` when they died (killed,
    power loss) and return them; a running export's folder, and one of another host or an older version
    (no pid in its name), stays. Before, each killed export left its part of a bundle there for good."""
    gone, host = [], socket.gethostname()
    for p in out_dir.glob(".bundle-*"):
        m = _TEMP.match(p.name)
        if m is None or m[2] != host or pid_alive(int(m[1])):
            continue
        shutil.rmtree(p, ignore_errors=True)
        log.warning("%s: removed the temporary folder of an export that died (pid %s)", p, m[1])
        gone.append(p)
    return gone


def replace_dir(src: Path, dst: Path) -> None:
    """Put the folder ``src`` where the folder ``dst`` is (a damaged copy), then delete the old one.
    The old one is moved aside first (``src``'s name is unique in its folder): a reader may find no
    folder there for a moment, never one with a mix of both."""
    old = src.with_name(src.name + ".old")
    os.replace(dst, old)
    os.replace(src, dst)
    shutil.rmtree(old, ignore_errors=True)


class BundleWriter:
    """Writes one bundle: rows and files into a temp folder, then ``finish`` publishes it.

    Args:
        out_dir: parent folder; the bundle becomes ``out_dir/<bundle_id>``.
    """

    def __init__(self, out_dir: str | os.PathLike[str]) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        remove_dead_temps(self.out_dir)
        # named by its writer (pid@host): a later export can tell a dead export's folder from a running one's
        self.tmp = Path(tempfile.mkdtemp(prefix=f".bundle-{os.getpid()}@{socket.gethostname()}-", dir=self.out_dir))
        self._jsonl: dict[str, _HashingFile] = {}
        self._done: dict[str, FileEntry] = {}

    def write_row(self, rel: str, row: Any) -> None:
        """Append one JSON row to the JSONL file ``rel`` (key order as built: deterministic)."""
        self.write_rows(rel, orjson.dumps(row, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE), 1)

    def write_rows(self, rel: str, data: bytes | memoryview, rows: int) -> None:
        """Append ``rows`` rows already serialised into ``data`` (one JSON document and its newline
        each) to ``rel``."""
        f = self._jsonl.get(rel)
        if f is None:
            f = self._jsonl[rel] = _HashingFile(self.tmp / safe_relpath(rel))
        f.write(data, rows)

    def write_lines(self, rel: str, lines: list[bytes], size: int) -> None:
        """Append serialised rows to ``rel``, one line each (``size`` bytes in all), not joined first."""
        f = self._jsonl.get(rel)
        if f is None:
            f = self._jsonl[rel] = _HashingFile(self.tmp / safe_relpath(rel))
        f.write_lines(lines, size)

    def write_file(self, rel: str, data: bytes, rows: int | None = None) -> None:
        """Write a whole file at once."""
        path = self.tmp / safe_relpath(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.write_bytes(data)
        except OSError as exc:
            raise named(exc, path) from exc
        self._done[rel] = FileEntry(rel, hashlib.sha256(data).hexdigest(), rows, len(data))

    def rows(self) -> dict[str, int]:
        """Rows written so far per JSONL file."""
        return {k: f.rows for k, f in self._jsonl.items()}

    def close_rows(self) -> list[FileEntry]:
        """Close the JSONL files; return their entries."""
        for rel, f in self._jsonl.items():
            f.close()
            self._done[rel] = FileEntry(rel, f.sha.hexdigest(), f.rows, f.bytes)
        self._jsonl.clear()
        return sorted(self._done.values(), key=lambda e: e.path)

    def finish(self, manifest: dict[str, Any]) -> tuple[Path, Manifest]:
        """Write ``manifest.json`` (files and bundle_id filled in) and publish the folder.

        Returns:
            The bundle folder and its manifest. When a bundle with the same id exists already, it
            is kept (same content by construction) and the new copy is discarded, unless it no
            longer verifies (damaged since it was written): then the new copy replaces it.
        """
        files = self.close_rows()
        bundle_id = compute_bundle_id([f.sha256 for f in files])
        man = {**manifest, "format": BUNDLE_FORMAT, "bundle_id": bundle_id, "files": [f.to_dict() for f in files]}
        try:
            write_atomic(self.tmp / MANIFEST, orjson.dumps(man, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        except OSError as exc:
            raise named(exc, self.tmp / MANIFEST) from exc
        final = self.out_dir / bundle_id
        if (final / MANIFEST).is_file():
            try:
                kept = verify_bundle(final)
            except BundleError as exc:  # damaged since it was written: the fresh copy takes its place
                log.warning("%s: replacing a damaged copy of this bundle with the fresh one (%s)", final, exc)
                verify_bundle(self.tmp, rehash=False)  # hashed as written; checks sizes and the file list
                replace_dir(self.tmp, final)
                return final, Manifest(bundle_id, files, man)
            shutil.rmtree(self.tmp, ignore_errors=True)
            return final, kept
        if final.exists():  # a half-written leftover without manifest: never trusted, replace it
            shutil.rmtree(final)
        os.replace(self.tmp, final)
        return final, Manifest(bundle_id, files, man)

    def abort(self) -> None:
        """Drop the temp folder (on errors)."""
        for f in self._jsonl.values():
            f.fh.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def parse_manifest(data: Any, where: str = MANIFEST) -> Manifest:
    """Check a manifest's shape (ids, file entries, safe paths) and parse it."""
    if not isinstance(data, dict):
        raise BundleError(f"{where}: not a JSON object")
    bid, files = data.get("bundle_id"), data.get("files")
    if not isinstance(bid, str) or len(bid) != 64:
        raise BundleError(f"{where}:bundle_id: missing or not a sha256 hex digest")
    if not isinstance(files, list) or not files:
        raise BundleError(f"{where}:files: missing or empty")
    entries, seen = [], set()
    for i, f in enumerate(files):
        if not isinstance(f, dict) or not isinstance(f.get("sha256"), str):
            raise BundleError(f"{where}:files[{i}]: needs path and sha256")
        path = safe_relpath(f.get("path"), f"{where}:files[{i}].path")
        if path in seen or path == MANIFEST:
            raise BundleError(f"{where}:files[{i}].path: {path!r} listed twice or names the manifest")
        seen.add(path)
        rows, size = f.get("rows"), f.get("bytes")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool)):
            raise BundleError(f"{where}:files[{i}].bytes: {size!r} is not a whole number of bytes")
        entries.append(FileEntry(path, f["sha256"], rows if isinstance(rows, int) else None,
                                 size if size is not None else -1))
    return Manifest(bid, entries, data)


def sha256_file(path: Path) -> str:
    """sha256 hex digest of the file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _sha256_files(paths: list[Path]) -> list[str]:
    """``sha256_file`` of each path, a few files at a time in threads: hashing and reading let go of
    the GIL, so a bundle's files (3 GB for 2000 OpenClaw sessions, ~2 s on one core) hash side by side."""
    threads = min(len(paths), os.cpu_count() or 1, 8)
    if threads <= 1:
        return [sha256_file(p) for p in paths]
    with ThreadPoolExecutor(threads, thread_name_prefix="tracebridge-hash") as pool:
        return list(pool.map(sha256_file, paths))


def verify_bundle(path: str | os.PathLike[str], rehash: bool = True) -> Manifest:
    """Check a bundle folder against its manifest and return the manifest.

    Checks: the manifest parses; every path stays inside the bundle; every file exists with
    the listed size and sha256; the bundle id matches the file hashes; no unlisted ``.jsonl``
    file (trainers read every one). ``rehash=False`` leaves out the sha256 of each file, for a
    caller that has just hashed every one of them itself (``fetch_bundle``, as they arrive).

    Raises:
        BundleError: on the first class of mismatch, listing every instance of it.
    """
    root = Path(path)
    mpath = root / MANIFEST
    try:
        man = parse_manifest(orjson.loads(mpath.read_bytes()), str(mpath))
    except OSError as exc:
        raise BundleError(f"{mpath}: no readable manifest: {exc}") from exc
    except orjson.JSONDecodeError as exc:
        raise BundleError(f"{mpath}: not JSON: {exc}") from exc
    found: list[tuple[int, str]] = []  # (file index, problem)
    real_root = root.resolve()
    to_hash: list[tuple[int, Path]] = []
    for i, f in enumerate(man.files):
        p = root / f.path
        if not p.resolve().is_relative_to(real_root):
            found.append((i, f"{mpath}:files[{i}].path: {f.path} escapes the bundle (symlink)"))
        elif not p.is_file():
            found.append((i, f"{mpath}:files[{i}].path: {f.path} is missing"))
        elif f.bytes >= 0 and p.stat().st_size != f.bytes:
            found.append((i, f"{mpath}:files[{i}].bytes: {f.path} does not match its manifest size"))
        elif rehash:
            to_hash.append((i, p))
    for (i, p), digest in zip(to_hash, _sha256_files([p for _, p in to_hash]), strict=True):
        if digest != man.files[i].sha256:
            found.append((i, f"{mpath}:files[{i}].sha256: {man.files[i].path} does not match its manifest sha256"))
    probs = [text for _, text in sorted(found)]
    if not probs and compute_bundle_id([f.sha256 for f in man.files]) != man.bundle_id:
        probs.append(f"{mpath}:bundle_id: does not match the file hashes")
    listed = {f.path for f in man.files}
    extra = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.jsonl")
                   if p.relative_to(root).as_posix() not in listed)
    probs += [f"{root}/{e}: not listed in the manifest (unlisted data is never trusted)" for e in extra]
    if probs:
        raise BundleError("bundle verification failed:\n  " + "\n  ".join(probs))
    return man
