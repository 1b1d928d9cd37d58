"""The hidden temporary files and folders of storage commands, and their removal once a killed command left them.

A push to a local folder copies each file under ``.<name>.<tag><random>.part`` beside it; a fetch downloads into
``<out>/.fetch-<tag><random>``; a pull into ``<out's parent>/.pull-<tag><name>-<random>`` (and moves the report it
replaces to ``.old-<name>-.pull-...``); a report pushed to a local storage is copied to ``.<name>.<tag><random>.copy``
beside it (``sweep.storage.put_dir``). ``<tag>`` is ``<pid>@<host>+``, the process that made it. A command killed
mid-way (SIGKILL, power loss, an OOM kill) left them for good: ``.part`` files in the storage's bundle folders,
whole partial bundles in the fetch folder; on ``s3://`` a push killed while it sent a file in parts left that
multipart upload open (never listed, its parts stored and billed). The next push, fetch or pull removes those that are stale
(``remove_stale``): older than ``STALE_AFTER_S`` (newest file inside, for a folder) and not held by a live process
(a tag of this host whose pid still runs). Names without a tag (written before tags) go by age alone, and so do
those of another host sharing the folder.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import time
from pathlib import Path
from typing import Any

from tracebridge.pool_workers import pid_alive

log = logging.getLogger(__name__)
STALE_AFTER_S = 3600.0  # an hour: longer than any push, fetch or pull between two writes of its temp files
PART, FETCH, PULL = ".*.part", ".fetch-*", ".pull-*"
PULL_OLD = ".old-*.pull-*"  # a pulled report's predecessor, moved aside before the swap (report_pull)
COPY = (".*.copy", ".*.copy.old")  # a folder put_dir copies to a local storage, and the one it replaced
# a multipart upload (s3fs sends a file of 100 MiB or more in parts) may run for hours on a slow link: a day, the
# least that S3's own lifecycle rule (AbortIncompleteMultipartUpload) takes
STALE_UPLOAD_S = 24 * 3600.0
_TAG = re.compile(r"(\d+)@([^+/]*)\+")


def temp_tag() -> str:
    """``<pid>@<host>+``: what the temporary names of this process carry, so that another can tell it runs."""
    return f"{os.getpid()}@{socket.gethostname()}+"


def held(name: str) -> bool:
    """Whether the temporary ``name`` is a running process's: its tag names this host and a live pid."""
    m = _TAG.search(name)
    return m is not None and m[2] == socket.gethostname() and pid_alive(int(m[1]))


def _newest_mtime(path: Path) -> float:
    """The latest modification time of ``path`` and, for a folder, of everything inside it."""
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for root, dirs, files in os.walk(path):
            for n in dirs + files:
                try:
                    newest = max(newest, os.lstat(os.path.join(root, n)).st_mtime)
                except OSError:  # gone meanwhile
                    continue
    return newest


def remove_stale(folder: Path, patterns: tuple[str, ...], recursive: bool = False,
                 max_age_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the entries of ``folder`` (and below, ``recursive``) matching ``patterns`` that are stale: older than
    ``max_age_s`` and not ``held``. Returns them; what cannot be removed is logged and left.
    """
    folder, now, gone = Path(folder), time.time(), []
    if not folder.is_dir():
        return gone
    for pattern in patterns:
        for p in sorted(folder.rglob(pattern) if recursive else folder.glob(pattern)):
            try:
                if held(p.name) or now - _newest_mtime(p) < max_age_s:
                    continue
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink()
            except FileNotFoundError:  # removed by another command meanwhile
                continue
            except OSError as exc:
                log.warning("%s: a stale temporary leftover that could not be removed: %s", p, exc)
                continue
            log.warning("%s: removed the temporary leftover of a push, fetch or pull that did not finish", p)
            gone.append(p)
    return gone


def abort_stale_uploads(fs: Any, path: str, max_age_s: float | None = None) -> list[str]:
    """Abort the multipart uploads under ``path`` (``bucket/prefix`` of the s3fs filesystem ``fs``) started more
    than ``max_age_s`` (default ``STALE_UPLOAD_S``) ago, the uploads of pushes killed mid-file, and return their
    keys. Housekeeping only: a storage that does not let this credential list or abort uploads is logged, and the
    push goes on."""
    max_age_s = STALE_UPLOAD_S if max_age_s is None else max_age_s
    bucket, _, prefix = path.strip("/").partition("/")
    gone: list[str] = []
    try:
        found = fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=f"{prefix}/" if prefix else "")
        for up in found.get("Uploads") or []:
            if time.time() - up["Initiated"].timestamp() < max_age_s:
                continue
            fs.call_s3("abort_multipart_upload", Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])
            log.warning("s3://%s/%s: aborted the multipart upload of a push that did not finish (started %s)",
                        bucket, up["Key"], up["Initiated"])
            gone.append(up["Key"])
    except Exception as exc:  # noqa: BLE001 - a clean-up this credential may not do never fails the push
        log.info("s3://%s/%s: stale multipart uploads not looked for: %s", bucket, prefix, exc)
    return gone
