"""``no_bucket``: whether the bucket of an ``s3://`` or ``gs://`` URI does not exist, said as the error of a storage
command. The object store answers a key under a bucket that does not exist as it answers a missing key
(FileNotFoundError), so ``pull`` said "no report there (no such folder)", ``fetch`` "no published bundle", a report
push "The specified bucket does not exist" without naming the URI: a mistyped bucket looked like an empty one.
``no_bucket_first`` asks before long work (a push's row scan), so a mistyped bucket is said at once."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from tracebridge.export.config import StorageConfig


def no_bucket(uri: str, cfg: StorageConfig | None = None, fs: Any = None) -> str | None:
    """The error for ``uri`` when its bucket does not exist (one request: ``fs``, or a filesystem opened with
    ``cfg``); None when it exists, when ``uri`` names no bucket (a local path) or when the store cannot tell (not
    reachable, refused): the caller's own error stands then."""
    parts = urlsplit(uri)
    if parts.scheme not in ("s3", "s3a", "gs", "gcs") or not parts.netloc:
        return None
    try:
        if fs is None:
            from tracebridge.export.storage import open_fs

            fs = open_fs(uri, cfg)[0]
        if fs.exists(parts.netloc):
            return None
    except Exception:  # noqa: BLE001 - a detail of another error: an unreachable store is said by the caller
        return None
    return _said(uri)


def _said(uri: str) -> str:
    parts = urlsplit(uri)
    where = ("the S3 endpoint in AWS_ENDPOINT_URL or s3_endpoint_url, and s3_region" if parts.scheme.startswith("s3")
             else "STORAGE_EMULATOR_HOST, when set")
    return (f"{uri}: the bucket {parts.netloc!r} does not exist there; check its name (and {where}), or create it")


def no_bucket_first(uri: str, fs: Any) -> str | None:
    """``no_bucket``'s error when ``uri``'s S3 bucket is answered missing (404) by one HEAD request, bounded by the
    storage's ``request_timeout_s`` (``open_fs`` gives the client that timeout and one attempt): for a check before
    long work (a push's row scan: minutes on a big bundle), so its own failure must not stop that work. None when
    the bucket exists, on any other answer (refused, unreachable, a timeout: the work's own requests say it, as
    before), and for other stores (``fs`` not s3fs's)."""
    parts = urlsplit(uri)
    if parts.scheme not in ("s3", "s3a") or not parts.netloc or not hasattr(fs, "call_s3"):
        return None
    try:
        fs.call_s3("head_bucket", Bucket=parts.netloc)
    except FileNotFoundError:  # s3fs's translation of a 404 / NoSuchBucket
        return _said(uri)
    except Exception:  # noqa: BLE001 - not this check's to say: the push's own requests fail as they did
        return None
    return None
