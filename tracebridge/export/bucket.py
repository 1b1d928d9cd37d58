"""``no_bucket``: whether the bucket of an ``s3://`` or ``gs://`` URI does not exist, said as the error of a storage
command. The object store answers a key under a bucket that does not exist as it answers a missing key
(FileNotFoundError), so ``pull`` said "no report there (no such folder)", ``fetch`` "no published bundle", a report
push "The specified bucket does not exist" without naming the URI: a mistyped bucket looked like an empty one."""

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
    where = ("the S3 endpoint in AWS_ENDPOINT_URL or s3_endpoint_url, and s3_region" if parts.scheme.startswith("s3")
             else "STORAGE_EMULATOR_HOST, when set")
    return (f"{uri}: the bucket {parts.netloc!r} does not exist there; check its name (and {where}), or create it")
