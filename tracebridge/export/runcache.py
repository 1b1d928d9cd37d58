"""A cache of built runs (``RunWork.build`` results) across exports of one trace root.

A daily cycle (``tracebridge.ops``) imports a day of sessions into a trace root that keeps every
earlier day, then exports the whole root: without a cache each export checks, redacts and renders
every run again, so its cost grows with the history. With ``export --cache DIR`` a run whose
inputs did not change since the last export is taken from ``DIR`` and only new or changed runs
are built; the bundle is byte-for-byte the one an export without the cache writes (tested).

What decides a built run, and so its key (sha256):

* the bytes of its ``events.jsonl`` and ``session.json``;
* the export config (resolved, every section), the tool schemas file it names, and the split its
  goal family has in this export;
* its feedback labels (``labels_for_run``: reactions arrive every day) and its human corrections
  (each line's content and place in the corrections file: an edited or added line rebuilds the run);
* the code: every ``.py`` file of the ``tracebridge`` package, and the versions of the libraries
  that shape the output (detect-secrets, pydantic, orjson).

An entry is one pickle per run (``<key[:2]>/<key>.pkl``, written to a temporary name and renamed,
so a killed export leaves no torn entry). An entry that does not load is rebuilt and rewritten.
After an export that finished, entries it did not use are deleted (``prune``), so the cache holds
one export's runs: about the size of the bundle's views. One cache per trace root and config; the
files are pickles, so the folder must be as trusted as the code (it is written by this host only).
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import orjson

import tracebridge
from tracebridge.capture.reader import RunDir
from tracebridge.corrections.records import Correction
from tracebridge.export.bundle import sha256_file
from tracebridge.export.config import ExportConfig
from tracebridge.export.families import split_family
from tracebridge.export.labels import LabelsForRun
from tracebridge.export.runwork import Built
from tracebridge.schema.canonical import library_versions

_LIBRARIES = ("detect-secrets", "pydantic", "pydantic-core", "orjson")


@cache
def code_digest() -> str:
    """sha256 over the package's ``.py`` files (path and bytes) and the versions in ``_LIBRARIES``."""
    h = hashlib.sha256(tracebridge.__version__.encode() + library_versions(_LIBRARIES))
    pkg = Path(tracebridge.__file__).resolve().parent
    for path in sorted(pkg.rglob("*.py")):
        h.update(str(path.relative_to(pkg)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _unread(exc: OSError) -> bytes:
    """The key part of a file that could not be read: ``b"-"`` when it does not exist, else why not (a
    missing session.json builds an incomplete run, an unreadable one a run whose file is unreadable:
    one key for both served the first build's reason after the file was made a folder or chmod 000)."""
    return b"-" if isinstance(exc, FileNotFoundError) else f"!{type(exc).__name__}:{exc.errno}".encode()


def _file_digest(path: Path) -> bytes:
    """sha256 of a file's bytes (``_unread`` when it cannot be read)."""
    try:
        return sha256_file(path).encode()
    except OSError as exc:
        return _unread(exc)


@dataclass
class CacheStats:
    """How an export used its cache."""

    hits: int = 0
    misses: int = 0
    unreadable: int = 0  # entries that did not load (rebuilt)
    written: int = 0
    unwritable: int = 0  # entries that could not be written (a full disk): rebuilt next time
    pruned: int = 0
    uncacheable: int = 0  # runs whose labels could not be keyed (built every time)

    def to_dict(self) -> dict[str, int]:
        """The counters as a plain dict."""
        return asdict(self)


class RunCache:
    """Built runs by key under ``root`` (see the module docstring).

    Args:
        root: the cache folder (created).
        cfg: the export config.
        assignment: goal family → split of this export.
        labels_for_run: the feedback seam of this export, or None.
        corrections: the human corrections of this export by run id, or None.
    """

    def __init__(self, root: str | os.PathLike[str], cfg: ExportConfig, assignment: dict[str, str],
                 labels_for_run: LabelsForRun | None,
                 corrections: Mapping[str, Sequence[Correction]] | None = None) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"export cache {self.root}: cannot create the folder: {exc.strerror or exc}") from exc
        self.cfg, self.assignment, self.labels_for_run = cfg, assignment, labels_for_run
        self.corrections = corrections or {}
        schemas = Path(cfg.tools.schemas_file) if cfg.tools.schemas_file else None  # read by ToolRegistry
        self.base = hashlib.sha256(code_digest().encode() + orjson.dumps(
            asdict(cfg), option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
            + (_file_digest(schemas) if schemas else b"")).digest()
        self.stats = CacheStats()
        self._used: set[str] = set()

    def key(self, run: RunDir) -> str | None:
        """The key of ``run`` in this export, or None when its labels cannot be keyed."""
        try:  # read once: parsed for the run's split, hashed for the key
            session: bytes | None = run.session_path.read_bytes()
        except OSError as exc:
            session, unread = None, _unread(exc)
        try:
            raw: Any = orjson.loads(session) if session is not None else {}
        except orjson.JSONDecodeError:
            raw = {}
        split = self.assignment.get(split_family(raw if isinstance(raw, dict) else {},
                                                 self.cfg.split.by_goal_sources), "train")
        try:
            labels = orjson.dumps(self.labels_for_run(run.run_id) if self.labels_for_run else None,
                                  option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
        except TypeError:
            self.stats.uncacheable += 1
            return None
        corrections = b"\n".join(c.key_bytes() for c in self.corrections.get(run.run_id, ()))
        h = hashlib.sha256(self.base)
        for part in (run.run_id.encode(), _file_digest(run.events_path),
                     hashlib.sha256(session).digest() if session is not None else unread,
                     split.encode(), labels, corrections):
            h.update(len(part).to_bytes(8, "little") + part)
        return h.hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.pkl"

    def get(self, key: str) -> Built | None:
        """The built run stored under ``key``, or None (a miss, or an entry that does not load)."""
        self._used.add(key)
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self.stats.misses += 1
            return None
        except OSError:
            data = b""
        try:
            built = pickle.loads(data)
            if not isinstance(built, Built):
                raise TypeError(f"not a built run: {type(built).__name__}")
        except Exception:  # noqa: BLE001 - a torn or foreign entry is rebuilt, never trusted
            self.stats.unreadable += 1
            self.stats.misses += 1
            path.unlink(missing_ok=True)
            return None
        self.stats.hits += 1
        return built

    def put(self, key: str, built: Built) -> None:
        """Store ``built`` under ``key`` (atomically: a temporary file, then a rename)."""
        path = self._path(key)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(exist_ok=True)
            tmp.write_bytes(pickle.dumps(built, protocol=pickle.HIGHEST_PROTOCOL))
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)  # a full disk costs a rebuild next time, never the export
            self.stats.unwritable += 1
            return
        self.stats.written += 1

    def prune(self) -> None:
        """Delete the entries (and temporary files) this export did not use."""
        for path in self.root.glob("*/*"):
            name = path.name
            if name.endswith(".tmp") or (name.endswith(".pkl") and name[:-4] not in self._used):
                path.unlink(missing_ok=True)
                self.stats.pruned += 1
