"""Shadow-cycle artifact bundles: ``artifacts/phase1-shadow/<UTC timestamp>/`` with ``manifest.json``.

A bundle folder is created exclusively (a second cycle in the same second gets a suffix, never
the same folder), every file is listed in the manifest with its sha256 and size, files are made
read-only once written, and ``manifest.json`` is written last and atomically: a folder without
a manifest is an unfinished (or crashed) cycle and is reported as such by the review.

Manifest keys (``MANIFEST_KEYS``): ``kind``, ``cycle_id``, ``started_at``, ``finished_at``,
``status`` (ok | failed), ``tracebridge_version``, ``git_sha``, ``config``, ``config_hash``,
``inputs``, ``files`` [{path, sha256, bytes}], ``steps`` {name: {status, needs, reason,
duration_s, outputs}}, ``uplift`` {metric, baseline, optimized, uplift}, ``integrity``
{runs_total, schema_valid_pct, lineage_valid_pct, quarantine_pct, reconciled, ...},
``feedback`` {audited_day (the UTC day before the cycle's), harvest_ran, audit_file, audit_sha256},
``chunk_policy`` {doc, doc_sha256, applied, batches, violations}; and, not required (older
manifests lack it), ``retention`` {enabled, items, removed, failed, bytes_freed, kept_cycles, pinned,
pinned_by, problems}: what the cycle's last step pruned of older cycles (``tracebridge.ops.retention``);
``lock`` {took_over_from: the holder note}, only when the cycle took the lock over from a cycle that
died holding it (``tracebridge.ops.locks``).
"""

from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import orjson

from tracebridge.capture.writer import write_atomic
from tracebridge.export.bundle import sha256_file  # one file hasher for bundles and cycle artifacts

KIND = "phase1-shadow"
MANIFEST = "manifest.json"
TS_FORMAT = "%Y%m%dT%H%M%SZ"
MANIFEST_KEYS = ("kind", "cycle_id", "started_at", "finished_at", "status", "tracebridge_version", "git_sha",
                 "config", "config_hash", "inputs", "files", "steps", "uplift", "integrity", "feedback",
                 "chunk_policy")


def check_input_files(files: list[tuple[str, str | Path | None]]) -> None:
    """Raise ValueError (``key=path: no such file``) for the first input file named by a config key
    that is not there (None: the key is off). An ops command calls it before any work: a missing
    input is a usage error (exit 2), not an empty result."""
    for key, f in files:
        if f is not None and not Path(f).is_file():
            raise ValueError(f"{key}={f}: no such file (paths are relative to the folder the job runs in)")


def check_folders(folders: list[tuple[str, str | Path]]) -> None:
    """Raise ValueError (``key=path: why``) for the first folder named by a config key that cannot be one: a
    file there, or a file where a folder above it must be (found later, a NotADirectoryError traceback once
    the work had started). An ops command calls it before any work (exit 2)."""
    for key, f in folders:
        for q in (Path(f), *Path(f).parents):
            if q.exists():
                if not q.is_dir():
                    raise ValueError(f"{key}={f}: not a folder" if q == Path(f) else
                                     f"{key}={f}: {q} is a file, not a folder")
                break


def cycle_stamp(now: dt.datetime) -> str:
    """The folder name of a cycle started at ``now`` (UTC, second precision, sortable)."""
    return now.astimezone(dt.UTC).strftime(TS_FORMAT)


def parse_stamp(name: str) -> dt.datetime | None:
    """The UTC time of a cycle folder name (``20260301T020000Z`` or with a ``-N`` suffix)."""
    try:
        return dt.datetime.strptime(name.split("-")[0], TS_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def new_bundle_dir(artifacts_dir: str | Path, now: dt.datetime) -> Path:
    """Create a fresh, empty cycle folder; never reuse an existing one."""
    root = Path(artifacts_dir)
    root.mkdir(parents=True, exist_ok=True)
    base = cycle_stamp(now)
    for i in range(1000):
        path = root / (base if i == 0 else f"{base}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"{root}: cannot create a cycle folder for {base}")


def file_entries(bundle: Path) -> list[dict[str, Any]]:
    """Every file under the bundle (but the manifest), with sha256 and size, in path order."""
    out = []
    for p in sorted(bundle.rglob("*")):
        if p.is_file() and p != bundle / MANIFEST:
            out.append({"path": p.relative_to(bundle).as_posix(), "sha256": sha256_file(p), "bytes": p.stat().st_size})
    return out


def freeze(bundle: Path) -> None:
    """Make every file of the bundle read-only."""
    for p in bundle.rglob("*"):
        if p.is_file():
            p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def write_manifest(bundle: Path, manifest: dict[str, Any]) -> Path:
    """List the files, write ``manifest.json`` last and atomically, then freeze the bundle."""
    manifest = {**manifest, "files": file_entries(bundle)}
    path = bundle / MANIFEST
    write_atomic(path, orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    freeze(bundle)
    return path


def verify_bundle(bundle: Path) -> list[str]:
    """Problems of a bundle: no manifest, missing keys, another kind, a ``cycle_id`` that is not the
    folder's name, missing or changed files (``path: why``)."""
    mp = bundle / MANIFEST
    if not mp.is_file():
        return [f"{bundle}: no {MANIFEST} (unfinished or crashed cycle)"]
    try:
        man = orjson.loads(mp.read_bytes())
    except orjson.JSONDecodeError as exc:
        return [f"{mp}: invalid JSON: {exc}"]
    shape = manifest_shape_problems(man)
    if shape:
        return [f"{mp}{p}" for p in shape]
    problems = [f"{mp}:{k}: missing" for k in MANIFEST_KEYS if k not in man]
    if "kind" in man and man["kind"] != KIND:
        problems.append(f"{mp}:kind: {man['kind']!r}, not a shadow cycle's manifest ({KIND!r})")
    if "cycle_id" in man and man["cycle_id"] != bundle.name:
        # the review dates a cycle by its folder name: a copied or renamed folder would count twice
        problems.append(f"{mp}:cycle_id: {man['cycle_id']!r} is not the folder name {bundle.name!r} "
                        "(the folder was copied or renamed)")
    for f in man.get("files", []):
        p = bundle / f["path"]
        if ".." in Path(f["path"]).parts or Path(f["path"]).is_absolute():
            problems.append(f"{mp}:files: path {f['path']} escapes the bundle")
        elif not p.is_file():
            problems.append(f"{p}: listed in the manifest but missing")
        elif sha256_file(p) != f["sha256"]:
            problems.append(f"{p}: sha256 differs from the manifest (changed after the cycle)")
    return problems


_BLOCKS = ("config", "inputs", "steps", "uplift", "integrity", "feedback", "chunk_policy")


def manifest_shape_problems(man: Any) -> list[str]:
    """Problems (``:key: why``) of a manifest whose structure the review cannot read: not an object,
    a block that is not an object, a step or file entry that is not one, a non-integer count."""
    if not isinstance(man, dict):
        return [f": not a JSON object but {type(man).__name__}"]
    out = [f":{k}: {type(man[k]).__name__}, expected an object" for k in _BLOCKS
           if man.get(k) is not None and not isinstance(man[k], dict)]
    steps = man.get("steps") if isinstance(man.get("steps"), dict) else {}
    out += [f":steps.{n}: {type(v).__name__}, expected an object" for n, v in steps.items() if not isinstance(v, dict)]
    files = man.get("files", [])
    if not isinstance(files, list):
        out.append(f":files: {type(files).__name__}, expected a list")
    else:
        out += [f":files[{i}]: expected {{path, sha256}} strings" for i, f in enumerate(files)
                if not (isinstance(f, dict) and isinstance(f.get("path"), str) and isinstance(f.get("sha256"), str))]
    cp = man.get("chunk_policy") if isinstance(man.get("chunk_policy"), dict) else {}
    out += [f":chunk_policy.{k}: {cp[k]!r}, expected an integer" for k in ("batches", "violations")
            if cp.get(k) is not None and (not isinstance(cp[k], int) or isinstance(cp[k], bool))]
    return out


def list_cycles(artifacts_dir: str | Path) -> list[tuple[dt.datetime, Path]]:
    """Cycle folders by time (folders whose name is not a cycle stamp are ignored)."""
    root = Path(artifacts_dir)
    if not root.is_dir():
        return []
    out = []
    for p in root.iterdir():
        t = parse_stamp(p.name) if p.is_dir() else None
        if t is not None:
            out.append((t, p))
    return sorted(out)


def read_manifest(bundle: Path) -> dict[str, Any] | None:
    """The bundle's ``manifest.json``, or None when it is missing, not valid JSON or not shaped like
    a manifest (``verify_bundle`` says which)."""
    try:
        man = orjson.loads((bundle / MANIFEST).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return None if manifest_shape_problems(man) else man


def git_sha(cwd: str | Path | None = None) -> str | None:
    """The current commit, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd or os.getcwd(), capture_output=True,
                             text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None
