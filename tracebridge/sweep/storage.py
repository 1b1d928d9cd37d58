"""Storage URIs of sweeps: local folders, ``file://``, ``s3://``, ``gs://`` (any fsspec
filesystem). Resolve them for Ray Tune's and Train's ``storage_path`` and ``storage_filesystem``, copy
folders up and down, and fetch and verify an export bundle into a node-local cache (one fetch per
node, under a file lock).

Every call is bounded as ``tracebridge push``/``fetch`` are (a ``StorageConfig``, the sweep's
``storage_io``): on ``s3://`` and ``gs://`` a request waits at most ``request_timeout_s`` to connect or for
the next bytes of its answer; on ``s3://`` the S3 client does not retry, each request is tried
``retry.attempts`` times, then fails with ``StorageUnreachable`` naming the URI and the tries
(``tracebridge.export.storage.retry_io``); gcsfs tries each ``gs://`` request 6 times itself (fixed in its
code) before ours do. Tune's and Train's own I/O (checkpoints, experiment state, ``Tuner.restore``) goes
through ``tune_storage``'s pyarrow filesystem with the same endpoint, timeout and tries
(``tracebridge.sweep.arrow_fs``); given a bare URI, Ray used pyarrow's S3 defaults (about 100 s per
request on a storage that never answers).

Layout under a sweep's storage URI: ``<storage>/<sweep id>/`` is the Tune experiment (trial
checkpoints, experiment state for ``Tuner.restore``), ``<storage>/reports/<sweep id>/`` the report.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

from tracebridge.export.config import RetryConfig, StorageConfig

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


def tune_storage(uri: str, cfg: StorageConfig | None = None) -> tuple[str, Any]:
    """What Ray's ``RunConfig(storage_path=..., storage_filesystem=...)``, ``Tuner.can_restore`` and
    ``Tuner.restore`` take for ``uri``, bounded by ``cfg`` as our own copies are: given a bare URI, Ray
    would reach S3 with pyarrow's defaults (about 100 s per request on a storage that never answers).

    Returns:
        ``(absolute path, None)`` for a local ``uri``; for ``s3://`` the path without the scheme and a
        ``tracebridge.sweep.arrow_fs.BoundedS3FileSystem`` (``cfg``'s endpoint and region, each try waiting
        at most ``cfg.request_timeout_s``, ``cfg.retry.attempts`` tries); for other schemes (``gs://``) the
        fsspec path and ``open_fs``'s bounded filesystem behind ``pyarrow.fs.FSSpecHandler``.

    Raises:
        tracebridge.export.storage.StorageError: a mistyped URI, credentials in it, an unknown protocol.
    """
    if is_local(uri):
        return str(local_path(uri)), None
    from tracebridge.sweep.arrow_fs import arrow_fs

    return arrow_fs(uri, cfg or StorageConfig())


def _fs(uri: str, cfg: StorageConfig | None = None) -> tuple[Any, str]:
    """A fresh, bounded filesystem for ``uri`` (``tracebridge.export.storage.open_fs``: on ``s3://`` each
    request waits at most ``cfg.request_timeout_s``, tried once; the callers retry with ``cfg.retry``).
    Fresh per call: fsspec's instance cache ignores the environment, so a long-lived process (the ops
    cycle) would keep the first AWS_ENDPOINT_URL/credentials it saw."""
    from tracebridge.export.storage import open_fs

    return open_fs(str(local_path(uri)) if is_local(uri) else uri, cfg)


def _retry(cfg: StorageConfig | None) -> RetryConfig:
    """The tries of each request: ``cfg.retry``, or those of a default ``StorageConfig``."""
    return (cfg or StorageConfig()).retry


def read_text(uri: str, cfg: StorageConfig | None = None) -> str:
    """A small file's text from any storage.

    Raises:
        FileNotFoundError: nothing at ``uri``.
        tracebridge.export.storage.StorageUnreachable: still failing after ``cfg.retry.attempts`` tries
            (names ``uri``, the tries and the last error).
        tracebridge.export.storage.StorageError: a mistyped URI, or no credentials found.
    """
    from tracebridge.export.storage import retry_io

    fs, path = _fs(uri, cfg)
    return retry_io(lambda: fs.cat_file(path).decode(), f"read of {uri}", _retry(cfg), uri, fs)


def exists(uri: str, cfg: StorageConfig | None = None) -> bool:
    """Whether anything exists at ``uri`` (a local path or an fsspec URL).

    Raises:
        tracebridge.export.storage.StorageError: as ``read_text``.
    """
    from tracebridge.export.storage import retry_io

    fs, path = _fs(uri, cfg)
    return bool(retry_io(lambda: fs.exists(path), f"look-up of {uri}", _retry(cfg), uri, fs))


def list_names(uri: str, cfg: StorageConfig | None = None, what: str = "") -> list[str]:
    """The names of the entries of the folder at ``uri``, sorted ([] when there is no such folder);
    ``what`` names the operation in log lines and the error (default ``listing of <uri>``).

    Raises:
        tracebridge.export.storage.StorageError: as ``read_text``.
    """
    from tracebridge.export.storage import retry_io

    fs, path = _fs(uri, cfg)
    what = what or f"listing of {uri}"
    try:  # a 403 (credentials the store refuses): a StorageError saying what to check
        entries = retry_io(lambda: fs.ls(path, detail=False), what, _retry(cfg), uri, fs)
    except FileNotFoundError:
        return []
    return sorted({str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries})


def put_text(uri: str, text: str, cfg: StorageConfig | None = None) -> None:
    """Write a small file at ``uri`` (a local one atomically), tried up to ``cfg.retry.attempts`` times.

    Raises:
        tracebridge.export.storage.StorageError: as ``read_text``.
        OSError: a local folder that cannot hold it.
    """
    if is_local(uri):
        dst = local_path(uri)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, dst)
        return
    from tracebridge.export.storage import retry_io

    fs, path = _fs(uri, cfg)
    retry_io(partial(fs.pipe_file, path, text.encode()), f"write of {uri}", _retry(cfg), uri, fs)


def put_dir(local: Path, uri: str, cfg: StorageConfig | None = None, what: str = "") -> None:
    """Copy a local folder's files to ``uri`` (replacing what is there), each file tried up to
    ``cfg.retry.attempts`` times; a top-level ``manifest.json`` goes last, so a copy cut short leaves none
    naming files that are not there. A local ``uri`` gets a copy made beside it and swapped in: a copy that
    fails keeps the folder there as it was (it was deleted first, and a failed copy left half a folder).
    An object store has no such swap: there the new manifest goes first under the name ``PUSHING`` and is
    removed last, so a reader can tell a push cut short (or running) over the folder, and name the files it has
    not sent yet (``tracebridge.cluster.report_pull``); running the copy again completes it. The files under
    ``uri`` that the local folder does not hold (an earlier push's) are removed once every file and the manifest
    are there, never before: a report pushed again with fewer files was refused by ``pull`` for those left there.

    Args:
        what: the operation, for log lines and the error (default ``copy to <uri>``).

    Raises:
        tracebridge.export.storage.StorageError: as ``read_text``.
        OSError: a local copy that failed (nothing changed at ``uri``).
    """
    if is_local(uri):
        dst = local_path(uri)
        if dst.resolve() != Path(local).resolve():
            from tracebridge.export.bundle import replace_dir
            from tracebridge.export.leftovers import COPY, remove_stale, temp_tag

            dst.parent.mkdir(parents=True, exist_ok=True)
            remove_stale(dst.parent, COPY)  # the copies of report pushes killed mid-way
            tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.{temp_tag()}", suffix=".copy", dir=dst.parent))
            try:
                shutil.copytree(local, tmp, dirs_exist_ok=True)
                if dst.exists():
                    replace_dir(tmp, dst)
                else:
                    os.replace(tmp, dst)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return
    from tracebridge.export.storage import StorageError, retry_io

    fs, path = _fs(uri, cfg)
    last = Path(local) / "manifest.json"
    files = sorted((f for f in Path(local).rglob("*") if f.is_file()), key=lambda f: (f == last, f))

    def put(f: Path, key: str) -> None:
        try:
            retry_io(partial(fs.put_file, str(f), f"{path}/{key}"), what or f"copy to {uri}", _retry(cfg), uri, fs)
        except FileNotFoundError as exc:  # the store's answer to a key under a bucket that does not exist
            from tracebridge.export.bucket import no_bucket

            raise StorageError(no_bucket(uri, fs=fs) or f"{what or f'copy to {uri}'} failed: {exc}") from exc

    if last.is_file():  # the push's manifest, first: until it is removed, the folder there is incomplete
        put(last, PUSHING)
    for f in files:
        put(f, f.relative_to(local).as_posix())
    keep = {f"{path}/{f.relative_to(local).as_posix()}" for f in files} | {f"{path}/{PUSHING}"}
    for key in retry_io(lambda: fs.find(path), what or f"copy to {uri}", _retry(cfg), uri, fs):
        if key not in keep and not key.endswith("/"):  # an earlier push's file ('x/': a folder marker, no file)
            try:
                retry_io(partial(fs.rm_file, key), what or f"copy to {uri}", _retry(cfg), uri, fs)
            except FileNotFoundError:  # removed meanwhile
                pass
            log.info("%s: removed %s, which the folder pushed there does not hold", uri, key[len(path) + 1:])
    if last.is_file():
        retry_io(partial(fs.rm_file, f"{path}/{PUSHING}"), what or f"copy to {uri}", _retry(cfg), uri, fs)


PUSHING = ".manifest.pushing.json"  # put_dir's copy of the manifest it pushes, there while it pushes to an object store


def get_dir(uri: str, local: Path, cfg: StorageConfig | None = None, what: str = "") -> Path:
    """Copy the folder at ``uri`` to ``local`` (replaced), the listing and each file tried up to
    ``cfg.retry.attempts`` times.

    Args:
        what: the operation, for log lines and the error (default ``copy from <uri>``).

    Raises:
        FileNotFoundError: no folder at ``uri``.
        ValueError: an object key that would land outside ``local`` (``..``, absolute).
        tracebridge.export.storage.StorageError: as ``read_text``, or the store refused the credentials (a 403).
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
    # a 403 (credentials the store refuses): a StorageError saying what to check (retry_io, given the URI)
    return _get_remote_dir(uri, local, cfg, what or f"copy from {uri}")


def _get_remote_dir(uri: str, local: Path, cfg: StorageConfig | None, what: str) -> Path:
    from tracebridge.export.bundle import safe_relpath
    from tracebridge.export.storage import retry_io

    retry = _retry(cfg)
    fs, path = _fs(uri, cfg)
    if not retry_io(lambda: fs.isdir(path), what, retry, uri, fs):
        raise FileNotFoundError(f"{uri}: no such folder")
    # object keys are arbitrary strings: 'x/../../.bashrc' must not be written outside ``local``; a key ending in
    # '/' is a folder marker (the S3 console's "Create folder", rclone, Hadoop), no file: it stopped the copy
    found = [(f, safe_relpath(f[len(path.rstrip("/")) + 1:], f"{uri}: object key"))
             for f in retry_io(lambda: fs.find(path), what, retry, uri, fs) if not f.endswith("/")]
    shutil.rmtree(local, ignore_errors=True)
    local.mkdir(parents=True)
    for f, rel in found:
        (local / rel).parent.mkdir(parents=True, exist_ok=True)
        retry_io(partial(fs.get_file, f, str(local / rel)), what, retry, uri, fs)
    return local


def read_bundle_manifest(uri: str, cfg: StorageConfig | None = None) -> dict[str, Any]:
    """The manifest of the bundle at ``uri`` (cheap: one small file; done before submit). ``uri``
    is a bundle folder, an export ``--out`` folder holding one bundle, or a storage prefix with a
    ``LATEST`` pointer (``tracebridge push`` layout).

    Raises:
        FileNotFoundError: no manifest there.
        ValueError: the manifest is not JSON or has no ``bundle_id``.
        tracebridge.export.storage.StorageError: as ``read_text``.
    """
    if is_local(uri):
        from tracebridge.export.storage import resolve_bundle_dir

        try:
            uri = str(resolve_bundle_dir(local_path(uri)))
        except (ValueError, OSError) as exc:
            raise FileNotFoundError(str(exc)) from exc
    elif not exists(join(uri, "manifest.json"), cfg) and exists(join(uri, "LATEST"), cfg):
        bid = json.loads(read_text(join(uri, "LATEST"), cfg)).get("bundle_id")
        uri = join(uri, str(bid))
    text = read_text(join(uri, "manifest.json"), cfg)
    try:
        man = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{join(uri, 'manifest.json')}:{exc.lineno}: not valid JSON: {exc.msg}") from exc
    if not isinstance(man, dict) or not man.get("bundle_id"):
        raise ValueError(f"{join(uri, 'manifest.json')}:1:bundle_id: missing; is this an export bundle?")
    return man


def ensure_bundle(uri: str, cache_root: Path, expected_id: str | None = None,
                  cfg: StorageConfig | None = None) -> tuple[Path, dict[str, Any]]:
    """A verified local copy of the bundle at ``uri`` and its manifest.

    Local bundles (a bundle folder or an export ``--out`` folder with one bundle) are verified in
    place; remote ones are fetched once per node into ``cache_root/<bundle_id>`` by
    ``tracebridge.export.storage.fetch_bundle`` (every sha256 checked; a ``LATEST`` pointer
    followed), under a file lock so concurrent trials share one fetch. Either way the files are
    hashed once per call (a trial hands the manifest on to ``run_trial`` rather than verifying again).
    ``cfg`` bounds the fetch (request timeout, retries).

    Raises:
        tracebridge.train.data.BundleError: hashes do not match, or the bundle is not ``expected_id``.
        tracebridge.export.bundle.BundleError, tracebridge.export.storage.StorageError: fetch failed
            (``StorageUnreachable`` after ``cfg.retry.attempts`` tries).
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
            path, fetched = fetch_bundle(uri, cache_root, cfg)  # verified: on download, or the cached copy again
        log.info("bundle %s from %s at %s", path.name, uri, path)
        man = fetched.data
    if expected_id and man.get("bundle_id") != expected_id:
        raise BundleError(f"{uri}/manifest.json:bundle_id: {man.get('bundle_id')} is not the submitted "
                          f"bundle {expected_id}; the bundle changed after submit")
    return path, man
