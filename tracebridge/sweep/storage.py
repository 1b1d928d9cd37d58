"""Storage URIs of sweeps: local folders, ``file://``, ``s3://``, ``gs://`` (any fsspec
filesystem). Resolve them for Ray Tune's ``storage_path``, copy folders up and down, and fetch
and verify an export bundle into a node-local cache (one fetch per node, under a file lock).

Layout under a sweep's storage URI: ``<storage>/<sweep id>/`` is the Tune experiment (trial
checkpoints, experiment state for ``Tuner.restore``), ``<storage>/reports/<sweep id>/`` the report.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def is_local(uri: str) -> bool:
    """A plain path or ``file://`` URI."""
    return "://" not in uri or uri.startswith("file://")


def local_path(uri: str, base: Path | None = None) -> Path:
    """The absolute local path of a plain path or ``file://`` URI (relative to ``base`` or cwd)."""
    p = Path(os.path.expanduser(uri.removeprefix("file://")))
    return p if p.is_absolute() else (base or Path.cwd()) / p


def absolutize(uri: str, base: Path | None = None) -> str:
    """A local URI made absolute (so a job running elsewhere on this machine finds it); remote
    URIs unchanged."""
    return str(local_path(uri, base).resolve()) if is_local(uri) else uri


def join(uri: str, *parts: str) -> str:
    """``uri/part/part`` without doubling slashes."""
    return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])


def tune_storage_path(uri: str) -> str:
    """What ``RunConfig(storage_path=...)`` takes: an absolute path, or the URI for pyarrow
    (``s3://``, ``gs://``)."""
    return str(local_path(uri)) if is_local(uri) else uri


def _fs(uri: str) -> tuple[Any, str]:
    """A fresh filesystem per call: fsspec's instance cache ignores the environment, so a
    long-lived process (the ops cycle) would keep the first AWS_ENDPOINT_URL/credentials it saw."""
    import fsspec

    return fsspec.core.url_to_fs(str(local_path(uri)) if is_local(uri) else uri, skip_instance_cache=True)


def read_text(uri: str) -> str:
    """A small file's text from any storage.

    Raises:
        FileNotFoundError: nothing at ``uri``.
    """
    fs, path = _fs(uri)
    with fs.open(path, "r") as fh:
        return fh.read()


def exists(uri: str) -> bool:
    """Whether anything exists at ``uri`` (a local path or an fsspec URL)."""
    fs, path = _fs(uri)
    return bool(fs.exists(path))


def put_dir(local: Path, uri: str) -> None:
    """Copy a local folder's files to ``uri`` (replacing what is there)."""
    if is_local(uri):
        dst = local_path(uri)
        if dst.resolve() != Path(local).resolve():
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(local, dst)
        return
    fs, path = _fs(uri)
    for f in sorted(Path(local).rglob("*")):
        if f.is_file():
            fs.put_file(str(f), f"{path}/{f.relative_to(local).as_posix()}")


def get_dir(uri: str, local: Path) -> Path:
    """Copy the folder at ``uri`` to ``local`` (replaced).

    Raises:
        FileNotFoundError: no folder at ``uri``.
        ValueError: an object key that would land outside ``local`` (``..``, absolute).
    """
    local = Path(local)
    if is_local(uri):
        src = local_path(uri)
        if not src.is_dir():
            raise FileNotFoundError(f"{uri}: no such folder")
        if src.resolve() != local.resolve():
            shutil.rmtree(local, ignore_errors=True)
            shutil.copytree(src, local)
        return local
    from tracebridge.export.bundle import safe_relpath

    fs, path = _fs(uri)
    if not fs.isdir(path):
        raise FileNotFoundError(f"{uri}: no such folder")
    # object keys are arbitrary strings: 'x/../../.bashrc' must not be written outside ``local``
    found = [(f, safe_relpath(f[len(path.rstrip("/")) + 1:], f"{uri}: object key")) for f in fs.find(path)]
    shutil.rmtree(local, ignore_errors=True)
    local.mkdir(parents=True)
    for f, rel in found:
        (local / rel).parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(f, str(local / rel))
    return local


def read_bundle_manifest(uri: str) -> dict[str, Any]:
    """The manifest of the bundle at ``uri`` (cheap: one small file; done before submit). ``uri``
    is a bundle folder, an export ``--out`` folder holding one bundle, or a storage prefix with a
    ``LATEST`` pointer (``tracebridge push`` layout).

    Raises:
        FileNotFoundError: no manifest there.
        ValueError: the manifest is not JSON or has no ``bundle_id``.
    """
    if is_local(uri):
        from tracebridge.export.storage import resolve_bundle_dir

        try:
            uri = str(resolve_bundle_dir(local_path(uri)))
        except (ValueError, OSError) as exc:
            raise FileNotFoundError(str(exc)) from exc
    elif not exists(join(uri, "manifest.json")) and exists(join(uri, "LATEST")):
        bid = json.loads(read_text(join(uri, "LATEST"))).get("bundle_id")
        uri = join(uri, str(bid))
    text = read_text(join(uri, "manifest.json"))
    try:
        man = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{join(uri, 'manifest.json')}:{exc.lineno}: not valid JSON: {exc.msg}") from exc
    if not isinstance(man, dict) or not man.get("bundle_id"):
        raise ValueError(f"{join(uri, 'manifest.json')}:1:bundle_id: missing; is this an export bundle?")
    return man


def ensure_bundle(uri: str, cache_root: Path, expected_id: str | None = None) -> tuple[Path, dict[str, Any]]:
    """A verified local copy of the bundle at ``uri`` and its manifest.

    Local bundles (a bundle folder or an export ``--out`` folder with one bundle) are verified in
    place; remote ones are fetched once per node into ``cache_root/<bundle_id>`` by
    ``tracebridge.export.storage.fetch_bundle`` (every sha256 checked; a ``LATEST`` pointer
    followed), under a file lock so concurrent trials share one fetch. Either way the files are
    hashed once per call (a trial hands the manifest on to ``run_trial`` rather than verifying again).

    Raises:
        tracebridge.train.data.BundleError: hashes do not match, or the bundle is not ``expected_id``.
        tracebridge.export.bundle.BundleError, tracebridge.export.storage.StorageError: fetch failed.
    """
    from filelock import FileLock

    from tracebridge.export.storage import fetch_bundle, resolve_bundle_dir
    from tracebridge.train.data import BundleError, verify_bundle_dir

    if is_local(uri):
        path = resolve_bundle_dir(local_path(uri))
        man = verify_bundle_dir(path)
    else:
        cache_root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(cache_root / "fetch.lock")):
            path, fetched = fetch_bundle(uri, cache_root)  # verified: on download, or the cached copy again
        log.info("bundle %s from %s at %s", path.name, uri, path)
        man = fetched.data
    if expected_id and man.get("bundle_id") != expected_id:
        raise BundleError(f"{uri}/manifest.json:bundle_id: {man.get('bundle_id')} is not the submitted "
                          f"bundle {expected_id}; the bundle changed after submit")
    return path, man
