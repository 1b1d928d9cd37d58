"""``push_bundle``: publish a verified, clean bundle to storage, and repair a damaged remote copy.

A push is refused unless the bundle verifies locally and its governance is clean (both redaction
passes, as the manifest and the hashed ``report.json`` both state; the rows are scanned too).
Publishing is atomic for readers: the files go first, ``manifest.json`` last, then the ``<URI>/LATEST``
pointer, each whole at its name in one step (one PUT on object stores; on local disks a copy under a
name of the push's own, renamed into place, so pushes of one bundle at once never show each other's
copies half written). A local file that changes after it was hashed (size, mtime or inode) stops the
push before the manifest, its sent copy deleted.

A remote copy whose manifest already names the bundle is not trusted on sight: one listing of its
folder is compared with the local manifest, every listed file present with its size
(``StorageConfig.verify_remote=size``, the default) and, with ``verify_remote=sha256``, with its
sha256 too (that reads every remote byte). A file missing or different there is sent again, and
the manifest as well when its file list differs from the local one (a torn or edited manifest);
the result's ``status`` is ``repaired`` and ``repaired`` lists each file and what was wrong. The
remote manifest must match the local one: one that does not parse, names another bundle or has an
edited field (which a fetch could not tell: the bundle id covers the files only; ``PROVENANCE``
fields may differ, another export of the same input) is sent again and named too. Without a remote
manifest the push is a first one (``published``), sending only the files not already there (a push
cut short before its last step).
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from tracebridge.export.bucket import no_bucket_first
from tracebridge.export.bundle import (
    MANIFEST,
    BundleError,
    FileEntry,
    Manifest,
    parse_manifest,
    verify_bundle,
)
from tracebridge.export.config import StorageConfig
from tracebridge.export.leftovers import PART, abort_stale_uploads, remove_stale, temp_tag
from tracebridge.export.rowscan import file_findings, row_findings
from tracebridge.export.storage import (
    LATEST,
    PushRefused,
    StorageError,
    failed_error,
    open_fs,
    resolve_bundle_dir,
    retry_io,
)

log = logging.getLogger(__name__)
# manifest fields an export of the same input may set otherwise (when and by what it ran): not damage
PROVENANCE = ("created_at", "git_sha", "tracebridge_version")


def governance_problems(bundle: Path, man: Manifest, progress: Callable[..., None] | None = None,
                        workers: int = 1) -> list[str]:
    """Why a bundle may not leave the host (empty = it may): its manifest's and report's redaction
    record, and its rows, scanned by ``workers`` processes (``tracebridge.export.rowscan``);
    ``progress(done, total, what)`` follows the rows."""
    out = []
    gov = man.governance
    if gov.get("pii_scan") != "clean" or gov.get("passed_both") is not True:
        out.append(f"manifest data_governance: pii_scan={gov.get('pii_scan')!r}, passed_both={gov.get('passed_both')!r}; "
                   "only bundles that passed both redaction passes may be pushed")
    try:
        report = orjson.loads((bundle / "report.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return out + ["report.json: missing or unreadable (it carries the hashed redaction record)"]
    red = report.get("redaction") if isinstance(report, dict) else None
    if red != gov:
        out.append("report.json redaction record differs from the manifest's data_governance")
    return out + row_findings(bundle, man, progress=progress, workers=workers) + file_findings(bundle, man)


def _is_local(fs: Any) -> bool:
    proto = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return "file" in proto or "local" in proto


def _put(fs: Any, local: Path | bytes, remote: str) -> None:
    """``local`` (a file, or bytes) at ``remote``, whole at its name in one step: one PUT on object stores;
    on local disks a copy under a name of this push's own, renamed into place. Written in place, a copy
    another push of the same bundle was still writing showed torn (0 bytes) under a published manifest,
    and two pushes sharing one temp name failed each other (``manifest.json.tmp``: no such file)."""
    local_fs = _is_local(fs)
    target = remote
    if local_fs:
        folder, name = remote.rsplit("/", 1)
        fs.makedirs(folder, exist_ok=True)
        target = f"{folder}/.{name}.{temp_tag()}{uuid.uuid4().hex[:12]}.part"  # tagged: remove_stale tells it runs
    try:
        if isinstance(local, Path):
            fs.put_file(str(local), target)
        else:
            fs.pipe_file(target, local)
        if local_fs:
            os.replace(target, remote)
    finally:
        if local_fs and os.path.lexists(target):  # a failed copy: nothing of it left beside the bundle's files
            os.unlink(target)


def _remote_manifest_problem(fs: Any, dest: str, man: Manifest, local: bytes) -> str | None:
    """What is wrong with the manifest published at ``dest`` (None: nothing), or ``"missing"``. Its fields
    other than the file list are in no file hash (the bundle id covers the files only), so a fetch cannot
    tell an edited one: each is compared with the local manifest's, ``PROVENANCE`` left out."""
    path = f"{dest}/{MANIFEST}"
    if not fs.exists(path):
        return "missing"
    raw = fs.cat_file(path)
    if raw == local:
        return None
    try:
        remote = parse_manifest(orjson.loads(raw), path)
    except (orjson.JSONDecodeError, BundleError) as exc:
        return f"unreadable ({str(exc).splitlines()[0]})"
    if remote.bundle_id != man.bundle_id:
        return f"names bundle {remote.bundle_id}"
    if [f.to_dict() for f in remote.files] != [f.to_dict() for f in man.files]:
        return "its file list differs from the bundle's"
    theirs, ours = orjson.loads(raw), orjson.loads(local)
    edited = sorted(k for k in {*theirs, *ours} - set(PROVENANCE) if theirs.get(k) != ours.get(k))
    # another export of the same input (another day, host or version) is the same bundle: kept as it is
    return f"edited: {', '.join(edited)}" if edited else None


def _remote_sha256(fs: Any, path: str) -> str:
    h = hashlib.sha256()
    with fs.open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def remote_damage(fs: Any, dest: str, src: Path, files: list[FileEntry], mode: str = "size") -> dict[str, str]:
    """``{path: what is wrong}`` for the bundle's files whose copy under ``dest`` is missing, of another
    size than the local (verified) file, or (``mode="sha256"``) of another sha256. One listing, plus
    one read of each file in sha256 mode."""
    fs.invalidate_cache(dest)  # a listing cached earlier in this process may predate the damage
    try:
        listing = fs.find(dest, detail=True)
    except FileNotFoundError:
        listing = {}
    strip = dest.rstrip("/") + "/"
    sizes = {k.removeprefix(strip): v.get("size") for k, v in listing.items()}
    out: dict[str, str] = {}
    for f in files:
        want = (src / f.path).stat().st_size
        got = sizes.get(f.path)
        if got is None:
            out[f.path] = "missing"
        elif got != want:
            out[f.path] = f"{got} bytes, not {want}"
        elif mode == "sha256" and _remote_sha256(fs, f"{dest}/{f.path}") != f.sha256:
            out[f.path] = "sha256 differs"
    return out


def _stats(src: Path) -> dict[str, tuple[int, int, int]]:
    """``{path: (size, mtime_ns, inode)}`` of every file of the bundle folder ``src``."""
    out = {}
    for p in src.rglob("*"):
        try:
            st = p.stat()
        except OSError:  # gone since the listing, a dangling link: no entry, so a change if it is listed
            continue
        if p.is_file():
            out[p.relative_to(src).as_posix()] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return out


def _refuse_changed(fs: Any, dest: str, src: Path, man: Manifest, before: dict[str, tuple[int, int, int]],
                    sent: set[str]) -> None:
    """Refuse, before the manifest and LATEST go, a push whose local files changed after they were
    hashed (an edit, a copy or an export into the folder while the push ran): what was sent may not be
    what the manifest lists. Their copies this push sent are deleted, so that the next push sends them
    again (``verify_remote=size`` would keep a changed copy of the same size).

    Raises:
        PushRefused: naming each changed file.
    """
    now = _stats(src)
    changed = [f.path for f in man.files if now.get(f.path) != before.get(f.path)]
    if not changed:
        return
    for path in changed:
        if path in sent:
            try:
                fs.rm_file(f"{dest}/{path}")
            except FileNotFoundError:
                pass
    raise PushRefused("refusing to publish: " + ", ".join(f"{src / p}" for p in changed)
                      + " changed while the push ran (after its sha256 was checked); the manifest and LATEST "
                      "were not written and the copies sent were deleted: export the bundle again (or put "
                      "its files back) and push again")


def push_bundle(bundle: str | os.PathLike[str], uri: str, cfg: StorageConfig | None = None,
                progress: Callable[..., None] | None = None, workers: int = 1) -> dict[str, Any]:
    """Publish a verified, clean bundle to ``<uri>/<bundle_id>/``, or repair the copy there;
    ``progress(done, total, what)`` follows the rows checked (by ``workers`` processes), then the MB sent.

    Returns:
        ``{"uri", "bundle_id", "files", "bytes", "status": published|exists|repaired, "verified":
        size|sha256, "repaired": [{"path", "problem"}]}``.

    Raises:
        PushRefused: the bundle does not verify or its governance is not clean, or one of its files changed
            while the push ran (nothing is published then; ``_refuse_changed``).
        StorageError: the storage cannot be reached, or (before the rows are scanned, and after, as the
            transfer's error) its ``s3://`` bucket does not exist.
    """
    try:
        src = resolve_bundle_dir(bundle)
        before = _stats(src)  # before the hashing: a file changed from here on is found before the manifest goes
        man = verify_bundle(src)
    except BundleError as exc:
        raise PushRefused(f"refusing to push: {exc}") from exc
    source, report = man.get("source"), man.get("report")  # objects in an export's manifest; a hand edit may not be
    if isinstance(source, dict) and source.get("exported") == 0:  # an export that found nothing: not "unredacted"
        fails = report.get("failures") if isinstance(report, dict) else None
        fails = fails if isinstance(fails, list) else []
        raise PushRefused("refusing to push a bundle with no exported run" + "".join(f"\n  {f}" for f in fails))
    cfg = cfg or StorageConfig()
    fs, base = open_fs(uri, cfg)  # a mistyped URI or no credentials found before the rows' scan (~33 s for 3 GB)
    if _is_local(fs) and Path(base).resolve().is_relative_to(src.resolve()):  # push B B: copied into itself
        raise StorageError(f"{uri}: inside the bundle folder {src} it would be pushed from (its copy would be "
                           "unlisted data of the bundle, which would no longer verify); give a folder outside it")
    if missing := no_bucket_first(uri, fs):  # one bounded request, not after the scan (minutes on a big bundle)
        raise StorageError(missing)
    probs = governance_problems(src, man, progress, workers)
    if probs:
        raise PushRefused("refusing to push an unredacted bundle:\n  " + "\n  ".join(probs))
    dest = f"{base}/{man.bundle_id}"
    out: dict[str, Any] = {"uri": f"{uri.rstrip('/')}/{man.bundle_id}", "bundle_id": man.bundle_id,
                           "files": len(man.files), "bytes": sum(max(f.bytes, 0) for f in man.files),
                           "verified": cfg.verify_remote}

    if _is_local(fs):  # the .part copies of pushes killed mid-way, in every bundle folder there
        remove_stale(Path(base), (PART,), recursive=True)
    local_manifest = (src / MANIFEST).read_bytes()
    sent_files: set[str] = set()  # by every try: a retry sends only what the one before had not

    def transfer() -> None:  # idempotent: a retry checks and re-sends what a failed try may have left half done
        bad = _remote_manifest_problem(fs, dest, man, local_manifest)
        # no manifest: a first push, or one cut short before its last step (files already there are kept)
        send = remote_damage(fs, dest, src, man.files, cfg.verify_remote)
        manifest_bad = bad is not None
        if bad == "missing":
            out.update(status="published", repaired=[])
        else:
            out["repaired"] = [{"path": p, "problem": why} for p, why in send.items()] + \
                ([{"path": MANIFEST, "problem": bad}] if bad else [])
            out["status"] = "repaired" if out["repaired"] else "exists"
        size, sent = sum(max(f.bytes, 0) for f in man.files if f.path in send), 0
        for f in man.files:
            if f.path in send:
                _put(fs, src / f.path, f"{dest}/{f.path}")
                sent_files.add(f.path)
                sent += max(f.bytes, 0)
                if progress is not None:
                    progress(round(sent / 1e6), round(size / 1e6), "MB sent")
        _refuse_changed(fs, dest, src, man, before, sent_files)
        if manifest_bad:
            _put(fs, src / MANIFEST, f"{dest}/{MANIFEST}")
        if cfg.update_latest:
            _put(fs, orjson.dumps({"bundle_id": man.bundle_id}), f"{base}/{LATEST}")

    try:
        retry_io(transfer, f"push of bundle {man.bundle_id} to {uri}", cfg.retry)
    except OSError as exc:  # a bundle file gone (moved, deleted, re-exported) is no storage failure: refused
        _refuse_changed(fs, dest, src, man, before, sent_files)
        raise failed_error(f"push to {uri}", uri, exc, fs) from exc
    if hasattr(fs, "call_s3"):  # s3: the open multipart uploads of pushes killed mid-file (after ours: a storage
        abort_stale_uploads(fs, base)  # that does not answer fails the push first, not after one more wait)
    for r in out["repaired"]:
        log.warning("%s/%s: %s on the storage; sent again", out["uri"], r["path"], r["problem"])
    log.info("pushed bundle %s to %s (%s)", man.bundle_id, out["uri"], out["status"])
    return out
