"""Bundle storage through fsspec: ``push_bundle`` and ``fetch_bundle`` for ``file://``, ``s3://``
(s3fs) and ``gs://`` (gcsfs, the ``gcs`` extra).

Publishing is atomic for readers: the files go first, ``manifest.json`` last, then the
``<URI>/LATEST`` pointer; readers trust only a folder with a manifest, and verify every sha256
(``fetch_bundle``). A push (``tracebridge.export.push``, re-exported here) is refused unless the
bundle verifies locally and its governance is clean, and repairs a damaged remote copy. A manifest
path that escapes the bundle (``..``, absolute) is refused on both sides.

Remote layout: ``<URI>/<bundle_id>/<file>`` and ``<URI>/LATEST`` (``{"bundle_id": ...}``);
``fetch_bundle(URI)`` takes a bundle folder or a prefix with a LATEST pointer.

A push or fetch retries transient storage failures (unreachable, timeout) with exponential backoff
(``retry_io``, ``StorageConfig.retry``) and then fails with ``StorageUnreachable`` naming the URI.

Credentials come only from the environment (``AWS_*``, ``GOOGLE_APPLICATION_CREDENTIALS``); a
URI with user info (``s3://key:secret@bucket``) is refused and nothing secret is written.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson

from tracebridge.export.bucket import no_bucket
from tracebridge.export.bundle import (
    MANIFEST,
    BundleError,
    Manifest,
    parse_manifest,
    replace_dir,
    sha256_file,
    verify_bundle,
)
from tracebridge.export.config import RetryConfig, StorageConfig
from tracebridge.export.credential_source import forbidden_raised
from tracebridge.export.leftovers import FETCH, remove_stale, temp_tag

log = logging.getLogger(__name__)
LATEST = "LATEST"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
# 'scheme:' (2+ letters, so a Windows drive is not one) not followed by '//'
_SCHEME_NO_SLASHES = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):(?!//)")
T = TypeVar("T")
# OSErrors that another try cannot fix.
_PERMANENT = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)


class StorageError(RuntimeError):
    """A storage operation that cannot go on (bad URI, nothing published there, I/O failure)."""


class StorageUnreachable(StorageError):
    """The storage could not be reached (still failing after the retries, or refused at connect): a
    later try may work, unlike a mistyped URI or missing credentials (``StorageError``)."""


class PushRefused(StorageError):
    """The bundle must not leave the host (integrity or governance)."""


def _transient() -> tuple[type[BaseException], ...]:
    """Exceptions of an unreachable or flaky storage: OSError (connection refused, reset, timeout)
    and the S3/HTTP clients' own connection errors (botocore's are not OSErrors)."""
    found: list[type[BaseException]] = [OSError]
    try:
        from botocore.exceptions import BotoCoreError

        found.append(BotoCoreError)
    except ImportError:
        pass
    try:
        from aiohttp import ClientError

        found.append(ClientError)
    except ImportError:
        pass
    return tuple(found)


def _no_credentials() -> tuple[type[BaseException], ...]:
    """The S3 client's "no credentials found" errors: BotoCoreErrors (so transient to ``_transient``),
    but another try finds no more credentials than the first."""
    try:
        from botocore.exceptions import NoCredentialsError, PartialCredentialsError
    except ImportError:
        return ()
    return NoCredentialsError, PartialCredentialsError


def _invalid_request() -> tuple[type[BaseException], ...]:
    """The S3 client's refusal of a request as written, before it is sent (a bucket name with a ``!`` or
    ``_``): a BotoCoreError (so transient to ``_transient``) that every try meets again."""
    try:
        from botocore.exceptions import ParamValidationError
    except ImportError:
        return ()
    return (ParamValidationError,)


def credentials_error(what: str, exc: BaseException) -> StorageError:
    """The error for storage that found no credentials, saying where to set them."""
    return StorageError(f"{what}: no storage credentials found ({type(exc).__name__}: {exc}); set "
                        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the environment "
                        "(credentials are never read from configs or URIs; the storage config's "
                        "s3_endpoint_url / s3_region / options say where, not who)")


def refused(uri: str, exc: BaseException) -> bool:
    """Whether ``exc`` is the object store at ``uri`` refusing a request (a 403 s3fs raises as a PermissionError
    naming no local file; gcsfs's, as ``forbidden_raised`` raises it), not a local file this host may not read or write."""
    return (isinstance(exc, PermissionError) and exc.filename is None
            and urlsplit(uri).scheme in ("s3", "s3a", "gs", "gcs"))


def failed_error(what: str, uri: str, exc: OSError, fs: Any = None) -> StorageError:
    """The error of an operation on ``uri`` that failed for good: on an object store a refusal (403: a
    credential it does not know, a request its policy denies) says which credentials were used
    (``credential_source``, of ``fs`` when given) and which to check; before it was "push to s3://... failed:
    Forbidden"."""
    hint = ""
    if refused(uri, exc):
        from tracebridge.export.credential_source import credential_source

        hint = ("; the storage refused the credentials in the environment or what they may do there "
                f"(credentials used: {credential_source(uri, fs)}): check "
                + ("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)" if uri.startswith("s3")
                   else "GOOGLE_APPLICATION_CREDENTIALS") + " and the bucket's policy")
    return StorageError(f"{what} failed: {exc}{hint}")


def retry_io(op: Callable[[], T], what: str, retry: RetryConfig | None = None, uri: str | None = None,
             fs: Any = None) -> T:
    """``op()``, tried again after transient storage failures with exponential backoff.

    Args:
        what: the operation and its URI, for log lines and the error (``push the report to s3://...``).
        uri, fs: the storage ``op`` reaches and its filesystem: given, the store's refusal (a 403) is a
            ``failed_error`` naming ``what``, ``uri`` and the credentials used, not a bare "Forbidden".

    Raises:
        StorageUnreachable: still failing after ``retry.attempts`` tries (names ``what``, the tries and
            the last error).
        StorageError: no credentials found, a request the S3 client refuses to send (a mistyped bucket
            name), or (``uri`` given) one the store refuses, at once: no retry can fix that. Other permanent
            errors (missing file, permission) are raised at once, unchanged.
    """
    retry = retry or RetryConfig()
    transient, no_creds, delay, attempt = _transient(), _no_credentials(), retry.backoff_s, 1
    while True:
        try:
            return forbidden_raised(op)
        except PermissionError as exc:
            if uri is not None and refused(uri, exc):
                raise failed_error(what, uri, exc, fs) from exc
            raise
        except _PERMANENT:
            raise
        except no_creds as exc:
            raise credentials_error(what, exc) from exc
        except _invalid_request() as exc:  # its message's detail (the bad value, the rule) is on its later lines
            raise StorageError(f"{what}: the storage client refused the request as written "
                               f"({type(exc).__name__}: {' '.join(str(exc).split())})") from exc
        except transient as exc:
            err = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
            if attempt >= retry.attempts:
                raise StorageUnreachable(f"{what} failed after {attempt} attempt(s): {err}") from exc
            log.warning("%s: attempt %d/%d failed (%s); retrying in %.3g s", what, attempt, retry.attempts, err, delay)
            time.sleep(delay)
            delay, attempt = min(delay * 2, retry.max_backoff_s), attempt + 1


def uri_problem(uri: str) -> str | None:
    """Why ``uri`` is a mistyped storage URI (None when it looks right): ``s3:/bucket`` or
    ``file:relative`` would otherwise be taken as a local folder named ``s3:`` or ``file:relative``."""
    m = _SCHEME_NO_SLASHES.match(uri)
    if m:
        return (f"{uri!r}: '{m.group(1)}:' must be followed by '//' (s3://bucket/prefix, gs://bucket/prefix, "
                "file:///absolute/path), or give a plain local path")
    parts = urlsplit(uri)
    if parts.scheme in ("s3", "gs", "gcs") and not parts.netloc:
        return f"{uri!r}: no bucket; write {parts.scheme}://bucket/prefix"
    segs = parts.path.rstrip("/").split("/")[1:]
    if parts.scheme in ("s3", "gs", "gcs") and ("" in segs or "." in segs or ".." in segs):
        # object keys are names, not paths: s3://b//x wrote keys '/x/...' that s3://b/x never finds
        fix = posixpath.normpath("/" + "/".join(x for x in segs if x)).lstrip("/")
        return (f"{uri!r}: an empty, '.' or '..' folder in an object store's key (kept as written, not resolved); "
                f"write {parts.scheme}://{parts.netloc}/{fix}")
    return None


def check_uri(uri: str) -> None:
    """Refuse an empty URI, a mistyped one (``uri_problem``) and one with credentials in it.

    Raises:
        StorageError: naming the URI and the fix.
    """
    if not uri.strip():  # fsspec takes '' as the current folder: `push B "$UNSET"` published into the cwd
        raise StorageError(f"{uri!r}: no storage URI given; write s3://bucket/prefix, gs://bucket/prefix, "
                           "file:///absolute/path or a local folder (./bundles)")
    problem = uri_problem(uri)
    if problem:
        raise StorageError(problem)
    if "@" in urlsplit(uri).netloc:
        raise StorageError(f"{uri!r}: credentials in URIs are refused; use the environment (AWS_*, ...)")


def open_fs(uri: str, cfg: StorageConfig | None = None) -> tuple[Any, str]:
    """An fsspec filesystem and the path inside it for ``uri``.

    Raises:
        StorageError: a mistyped URI, credentials in the URI, or an unknown/unavailable/unreachable protocol.
    """
    import fsspec

    check_uri(uri)
    protocol = urlsplit(uri).scheme or "file"
    opts = (cfg or StorageConfig()).fs_options(protocol)
    try:
        if protocol in ("gs", "gcs"):
            gcs = _gcs_class()
            fs, path = gcs(skip_instance_cache=True, **opts), gcs._strip_protocol(uri)
        else:
            fs, path = fsspec.core.url_to_fs(uri, skip_instance_cache=True, **opts)
    except OSError as exc:  # protocols that connect at once (ftp, sftp): unknown host, refused
        raise StorageUnreachable(f"{uri}: cannot reach this storage: {exc}") from exc
    except (ImportError, ValueError) as exc:
        hint = " (install the gcs extra: pip install 'tracebridge[gcs]')" if protocol in ("gs", "gcs") else ""
        raise StorageError(f"{uri}: cannot open this storage{hint}: {exc}") from exc
    if protocol in ("s3", "s3a"):
        fs.retries = 1  # s3fs's own retries (a class attribute, no option): retry_io retries, with retry.*
        try:
            fs.connect()  # makes the client (finds credentials, sends no request) so its uploads are bounded too
        except _transient() as exc:  # botocore's: an unknown AWS_PROFILE, an unreadable AWS config file
            raise StorageError(f"{uri}: cannot open this storage: {type(exc).__name__}: {exc}") from exc
        fs.s3.meta.events.register_last("before-call.s3", _no_expect_continue)
    return fs, path.rstrip("/")


def _gcs_class() -> Any:
    """gcsfs's core ``GCSFileSystem``: its 2026 default (``ExtendedGcsFileSystem``) asks a storage-control gRPC
    API for the bucket's layout before its operations, again after each failed answer: a warning each, and 60 s
    of its own (outside ``request_timeout_s``) per operation where that API does not answer. Its credentials are
    looked up once per process (``tracebridge.export.gcs``: ~12 s per open off Google Cloud before).

    Raises:
        ImportError: gcsfs is not installed (the ``gcs`` extra).
    """
    from tracebridge.export.gcs import GCSFileSystem

    return GCSFileSystem


def _no_expect_continue(params: dict[str, Any], **_: Any) -> None:
    """Send uploads without botocore's ``Expect: 100-continue``: aiohttp waits for the "100 Continue"
    answer with no timeout (``read_timeout`` starts after the body), so a storage that accepts and never
    answers held every PUT for ever. botocore's own HTTP client waits 1 s for it and sends the body anyway;
    without the header the body goes at once, as there. Returns None: a value would answer the call."""
    params["headers"].pop("Expect", None)


def resolve_bundle_dir(path: str | os.PathLike[str]) -> Path:
    """A bundle folder, or the single bundle inside an export ``--out`` folder.

    Raises:
        BundleError: no bundle, or several to choose from.
    """
    p = Path(path)
    if (p / MANIFEST).is_file():
        return p
    # a hidden folder is a fetch's or export's temporary one (a killed fetch's may hold its manifest): no bundle
    found = sorted(d for d in p.iterdir() if not d.name.startswith(".") and (d / MANIFEST).is_file()) if p.is_dir() else []
    if len(found) == 1:
        return found[0]
    if not found:
        raise BundleError(f"{p}: no bundle (no {MANIFEST} here or in a subfolder)")
    raise BundleError(f"{p}: {len(found)} bundles; name one: {', '.join(d.name for d in found)}")


def _resolve_remote(fs: Any, base: str, uri: str) -> str:
    if fs.exists(f"{base}/{MANIFEST}"):
        return base
    if fs.exists(f"{base}/{LATEST}"):
        try:
            bid = orjson.loads(fs.cat_file(f"{base}/{LATEST}")).get("bundle_id")
        except (orjson.JSONDecodeError, AttributeError) as exc:
            raise StorageError(f"{uri}/{LATEST}: not a JSON pointer") from exc
        if not isinstance(bid, str) or not _HEX64.match(bid):
            raise StorageError(f"{uri}/{LATEST}: bundle_id {bid!r} is not a sha256 hex digest")
        if fs.exists(f"{base}/{bid}/{MANIFEST}"):
            return f"{base}/{bid}"
        raise StorageError(f"{uri.rstrip('/')}/{LATEST}: names bundle {bid}, but {uri.rstrip('/')}/{bid}/{MANIFEST} is not there "
                           "(removed, or its push was cut short): push that bundle again, or fetch another by its folder")
    raise StorageError(no_bucket(uri, fs=fs) or f"{uri}: no published bundle (no {MANIFEST}, no {LATEST}); readers trust only manifests")


def _verified_or_none(path: Path) -> Manifest | None:
    """The manifest of the bundle folder ``path`` when it verifies; None when it does not (a
    leftover without manifest, or files changed since they were written)."""
    try:
        return verify_bundle(path)
    except (BundleError, OSError):
        return None


def _remote_manifest(fs: Any, base: str, uri: str, retry: RetryConfig) -> tuple[str, str, bytes, Manifest]:
    """The bundle's remote folder, its name in messages (uri, or uri/<id> via LATEST), raw and parsed manifest."""
    where = uri.rstrip("/")
    try:
        src = retry_io(lambda: _resolve_remote(fs, base, uri), f"fetch from {uri}", retry)
        where += src[len(base):]
        raw = retry_io(lambda: fs.cat_file(f"{src}/{MANIFEST}"), f"fetch from {uri}", retry)
        man = parse_manifest(orjson.loads(raw), f"{where}/{MANIFEST}")
    except orjson.JSONDecodeError as exc:
        raise BundleError(f"{where}/{MANIFEST}: not JSON: {exc}") from exc
    except OSError as exc:  # permanent (retry_io raises those at once): missing, no permission
        raise failed_error(f"fetch from {uri}", uri, exc, fs) from exc
    if not _HEX64.match(man.bundle_id):
        raise BundleError(f"{where}/{MANIFEST}:bundle_id: not a sha256 hex digest")
    return src, where, raw, man


def fetch_bundle(uri: str, out_dir: str | os.PathLike[str], cfg: StorageConfig | None = None
                 ) -> tuple[Path, Manifest]:
    """Download a published bundle into ``out_dir/<bundle_id>`` and verify every file.

    Raises:
        BundleError: unsafe manifest paths, a file whose sha256 or size differs.
        StorageUnreachable: the storage cannot be reached after ``cfg.retry.attempts`` tries.
        StorageError: nothing published at ``uri``, or the storage finds no credentials.
    """
    fs, base = open_fs(uri, cfg)
    retry = (cfg or StorageConfig()).retry
    src, where, raw, man = _remote_manifest(fs, base, uri, retry)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, no permission
        raise StorageError(f"{out}: cannot hold the fetched bundle: {exc}") from exc
    final = out / man.bundle_id
    if (final / MANIFEST).is_file():
        try:
            return final, verify_bundle(final)
        except BundleError as exc:  # damaged since it was fetched: fetched again and swapped in below
            log.warning("%s: the local copy no longer verifies (%s); fetching it again", final, exc)
    remove_stale(out, (FETCH,))  # the partial bundles of fetches killed mid-way
    tmp = Path(tempfile.mkdtemp(prefix=f".fetch-{temp_tag()}", dir=out))
    try:
        for f in man.files:
            local = tmp / f.path
            local.parent.mkdir(parents=True, exist_ok=True)
            try:
                retry_io(partial(fs.get_file, f"{src}/{f.path}", str(local)), f"fetch of {where}/{f.path}", retry)
            except FileNotFoundError as exc:
                raise BundleError(f"{where}/{f.path}: listed in the manifest but missing from the store") from exc
            if sha256_file(local) != f.sha256:
                raise BundleError(f"{where}/{f.path}: sha256 does not match the manifest (tampered or torn)")
        (tmp / MANIFEST).write_bytes(raw)  # the manifest the files were checked against, not a second read
        verified = verify_bundle(tmp, rehash=False)  # each file's sha256 was checked above, as it arrived
        final = out / verified.bundle_id
        if final.exists():  # a leftover without manifest, a damaged copy, or one another fetch just wrote
            kept = _verified_or_none(final)
            if kept is not None:
                shutil.rmtree(tmp, ignore_errors=True)
                return final, kept
            replace_dir(tmp, final)
        else:
            os.replace(tmp, final)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise failed_error(f"fetch from {uri}", uri, exc, fs) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final, verified


def __getattr__(name: str) -> Any:
    """``push_bundle`` and ``governance_problems`` live in ``tracebridge.export.push`` (imported lazily:
    that module imports this one)."""
    if name in ("push_bundle", "governance_problems"):
        from tracebridge.export import push

        return getattr(push, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
