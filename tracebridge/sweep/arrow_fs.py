"""The pyarrow filesystems Ray Tune and Ray Train write a sweep's storage through
(``RunConfig(storage_filesystem=...)``: trial checkpoints, experiment state, ``Tuner.restore``), bounded
as our own copies are by the sweep's ``storage_io``. Given only a URI, Ray builds pyarrow's S3 with its
defaults: on an S3 that accepts connections and never answers, every request took about 100 s.

``s3://`` is pyarrow's own S3 client (``BoundedS3FileSystem``); any other fsspec scheme (``gs://``) is
the bounded fsspec filesystem of ``tracebridge.export.storage.open_fs`` behind ``pyarrow.fs.FSSpecHandler``.
Imported lazily (by ``tracebridge.sweep.storage.tune_storage``): it imports pyarrow.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from tracebridge.export.config import StorageConfig


class BoundedS3FileSystem(pafs.S3FileSystem):
    """pyarrow's S3 whose requests are tried ``attempts`` times in all, also in its pickled copies.

    pyarrow (26) leaves the retry strategy out when it pickles an ``S3FileSystem`` (apache/arrow
    GH-47348), and Ray pickles the RunConfig into every trial: each trial's copy went back to pyarrow's
    3 tries whatever was set. The retries are the AWS SDK's (its backoff, not ``retry.backoff_s``)."""

    def __init__(self, attempts: int, **options: Any) -> None:
        super().__init__(retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=attempts), **options)
        self.attempts = attempts

    def __reduce__(self) -> tuple[Any, ...]:
        _, (options,) = super().__reduce__()
        return _rebuild_s3, (self.attempts, options)


def _rebuild_s3(attempts: int, options: dict[str, Any]) -> BoundedS3FileSystem:
    return BoundedS3FileSystem(attempts, **options)


def arrow_fs(uri: str, cfg: StorageConfig) -> tuple[str, pafs.FileSystem]:
    """The path inside the filesystem (the URI without its scheme) and the bounded pyarrow filesystem
    for a remote ``uri``.

    Raises:
        tracebridge.export.storage.StorageError: as ``open_fs`` (a mistyped URI, credentials in it, a
            protocol that is not installed); on ``s3://``, an ``options`` key pyarrow's S3 has no equivalent for.
    """
    from tracebridge.export.storage import StorageError, check_uri, open_fs

    parts = urlsplit(uri)
    if parts.scheme in ("s3", "s3a"):
        check_uri(uri)
        try:
            options = cfg.arrow_s3_options()
        except ValueError as exc:  # an s3fs option pyarrow cannot take: Tune would reach another storage
            raise StorageError(f"{uri}: storage_io.{exc}") from None
        return f"{parts.netloc}{parts.path}".rstrip("/"), BoundedS3FileSystem(cfg.retry.attempts, **options)
    fs, path = open_fs(uri, cfg)
    return path, pafs.PyFileSystem(pafs.FSSpecHandler(fs))
