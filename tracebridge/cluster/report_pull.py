"""Pulling a sweep's report from storage: ``pull_report`` downloads the report folder, verifies it against its
manifest (and the sweep, bundle and attempt it is pulled for), and only then moves it into place. A read that
meets a report being overwritten (files of two reports) is read again; a report that keeps changing is said so.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Any

from tracebridge.export.config import StorageConfig

log = logging.getLogger(__name__)


def pull_report(uri: str, out: Path, storage_io: StorageConfig | None = None,
                expect: dict[str, str] | None = None) -> dict[str, Any]:
    """Download the report folder at ``uri`` and verify it against its manifest; only a verified
    report is moved to ``out`` (replacing the one there), so a failed pull leaves ``out`` as it was.
    Each request waits at most ``storage_io.request_timeout_s`` and is tried ``storage_io.retry.attempts``
    times (defaults: those of ``tracebridge fetch``). ``expect`` holds manifest fields the report must
    have (``sweep_id``, ``bundle_id`` of the plan or job it is pulled for): a report that verifies
    against its own manifest but is another sweep's or bundle's is refused too, and so is one another
    attempt wrote (``submission_id``: the attempt pulled for pushed no report, an earlier one's lies there).
    A manifest written before submission ids were recorded is accepted with a note saying so.

    Returns:
        ``{"path", "problems", "report_html", "manifest", "written_by", "notes"}`` (``path``: where the report
        now lies, None when none was written); ``problems`` is empty
        when every file matches its manifest hash (they name the files at ``uri``); ``report_html`` and
        ``manifest`` are None when it is not; ``written_by`` is the manifest's ``submission_id`` (None
        when it records none, which a note then says). A storage that cannot be reached (after the tries) adds
        ``"unreachable": True`` (try again later, exit 3), one that cannot be opened or refuses the request
        (an unknown protocol, a mistyped bucket, no credentials) ``"refused": True`` (a config to fix, exit 2
        as ``fetch``), a local folder that cannot be read (no permission) a problem. A mistyped ``uri``, one with no folder
        there, or one holding none of ``REPORT_FILES`` (an empty folder; a storage root, found by one listing and
        not downloaded) adds ``"no_source": True``: for a URI or folder the caller gave, a usage error (exit 2).
        A remote report that does not verify is read again (up to ``storage_io.retry.attempts`` reads, waiting
        ``retry.backoff_s``, doubled): a read during a push over it gets files of both reports (the push sends its
        files first, its manifest last). One that reads the same twice is damaged (its problems returned); one
        whose every read differs adds ``"changing": True`` (try again later, exit 3), its first problem saying so.
    """
    import json
    import shutil
    import tempfile

    from tracebridge.export.bucket import no_bucket
    from tracebridge.export.leftovers import PULL, PULL_OLD, remove_stale, temp_tag
    from tracebridge.export.storage import StorageError, StorageUnreachable, uri_problem
    from tracebridge.report import verify_report
    from tracebridge.sweep.storage import PUSHING, get_dir, is_local, list_names

    failed = {"path": None, "report_html": None, "manifest": None, "written_by": None, "notes": []}
    if bad := uri_problem(uri):
        return {**failed, "problems": [bad], "no_source": True}
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(out.parent, (PULL, PULL_OLD))  # what pulls killed mid-way left beside their reports
        tmp = Path(tempfile.mkdtemp(prefix=f".pull-{temp_tag()}{out.name}-", dir=out.parent))
    except OSError as exc:  # a file in the way, no permission
        return {**failed, "problems": [f"{out.parent}: cannot hold the pulled report: {exc}"]}
    retry, reads = (storage_io or StorageConfig()).retry, []  # reads: the digest of each torn read
    try:
        while True:
            try:
                names = list_names(uri, storage_io, f"pull from {uri}")  # a folder holding no report is not downloaded
                if not names or set(names) & {*REPORT_FILES, PUSHING}:
                    get_dir(uri, tmp, storage_io, f"pull from {uri}")
            except FileNotFoundError as exc:
                return {**failed, "problems": [no_bucket(uri, storage_io) or f"{uri}: no report there ({exc})"],
                        "no_source": True}
            except ValueError as exc:
                return {**failed, "problems": [str(exc)]}
            except (StorageError, OSError) as exc:  # unreachable after the tries; no credentials or permission
                if not isinstance(exc, StorageError):
                    return {**failed, "problems": [f"pull from {uri}: {exc}"]}
                return {**failed, "problems": [str(exc)],
                        ("unreachable" if isinstance(exc, StorageUnreachable) else "refused"): True}
            pushing = _take(tmp / PUSHING)  # the manifest of a push to an object store not ended (sweep.storage.put_dir)
            if pushing is None and not any((tmp / f).exists() for f in REPORT_FILES):  # an empty or other folder
                return {**failed, "problems": [f"{uri.rstrip('/')}: no report there (no {', '.join(REPORT_FILES)})"],
                        "no_source": True}
            problems = [p.replace(str(tmp), uri.rstrip("/")) for p in verify_report(tmp)]
            # no manifest and no PUSHING: a push from before PUSHING was written, cut short (a local copy is swapped in
            # whole: one without a manifest there was damaged)
            incomplete = bool(problems) and (pushing is not None
                                             or not is_local(uri) and not (tmp / "manifest.json").exists())
            if incomplete:
                problems = unfinished_push(tmp, pushing, uri)
            elif problems and not is_local(uri) and all(p.endswith(": not listed in the manifest") for p in problems):
                problems = [f"{p} (left by an earlier push: pushing the report again removes it)" for p in problems]
            if not problems or is_local(uri) or retry.attempts < 2:
                break
            # files of two reports (a push overwriting this one: its files go first, its manifest last) or a damaged
            # one: read again; the same bytes twice is a damaged report (or a push cut short), not one being written
            reads.append(_digest(tmp))
            if len(reads) >= 2 and reads[-1] == reads[-2]:
                break
            if len(reads) >= retry.attempts:
                return {**failed, "problems": [CHANGING.format(uri=uri.rstrip("/"), reads=len(reads))] + problems,
                        "changing": True}
            wait = min(retry.backoff_s * 2 ** (len(reads) - 1), retry.max_backoff_s)
            log.warning("%s: the report read does not verify (%s); reading it again in %.3g s (read %d/%d)",
                        uri, problems[0], wait, len(reads), retry.attempts)
            time.sleep(wait)
        if incomplete:
            return {**failed, "problems": problems, "incomplete": True}
        problems = problems or report_mismatch(tmp, uri, expect)
        if problems:
            return {**failed, "problems": problems}
        old = out.with_name(f".old-{out.name}-{tmp.name}") if out.exists() else None
        if old is not None:
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    man = json.loads((out / "manifest.json").read_text())
    notes = [] if man.get("submission_id") else [UNSTAMPED.format(uri=uri.rstrip("/"))]
    if pushing is not None and pushing != (out / "manifest.json").read_bytes():  # a push over it not ended
        notes.append(PUSH_OVER.format(uri=uri.rstrip("/"), rid=_report_id(pushing), have=man.get("report_id")))
    return {"path": str(out), "problems": [], "manifest": man, "written_by": man.get("submission_id"),
            "notes": notes, "report_html": str(out / "report.html") if (out / "report.html").is_file() else None}


REPORT_FILES = ("manifest.json", "results.json", "report.html")  # one of them: a report, maybe damaged
CHANGING = ("{uri}: the report changed while it was read ({reads} reads, each of other bytes, none verifying: "
            "a push is overwriting it); nothing was pulled: pull again once that push has ended")
UNSTAMPED = ("{uri}/manifest.json: records no submission_id (written before reports named the attempt that "
             "wrote them, or outside a Ray job): which attempt of the sweep wrote it is not checked")


PUSH_OVER = ("{uri}: a push of report {rid} over this one was cut short or is running (its manifest is not there yet); "
             "the report pulled is the complete one there before it, {have}")


def _report_id(manifest: bytes) -> object:
    """The ``report_id`` of a manifest's bytes (None when they are no manifest)."""
    import json

    try:
        return json.loads(manifest).get("report_id")
    except (ValueError, AttributeError):
        return None


def _take(path: Path) -> bytes | None:
    """The bytes of the file at ``path``, which is removed (None when there is none)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    path.unlink()
    return data


def unfinished_push(report: Path, pushing: bytes | None, uri: str) -> list[str]:
    """The problem of a report folder a push has not finished (``report``: its copy here, without ``PUSHING``):
    ``pushing``, the manifest the push began with (None: a push from before it was written, whose manifest, sent
    last, is not there), names the files not there yet (missing, or still those of the report it replaces) and
    those its manifest does not list."""
    import json

    from tracebridge.sweep.storage import PUSHING

    where, rels = uri.rstrip("/"), sorted(p.relative_to(report).as_posix() for p in report.rglob("*") if p.is_file())
    fix = "run that push again to complete it (or pull once it has ended)"
    try:
        files = {f["path"]: f["sha256"] for f in json.loads(pushing or b"")["files"]}
    except (ValueError, TypeError, KeyError):  # no manifest pushed yet, or one of no report
        if pushing is not None:
            return [f"{where}/{PUSHING}: incomplete report: the manifest of its push is not a report manifest; {fix}"]
        return [(f"{where}/manifest.json: missing: an incomplete report (a push cut short or still running: its "
                 f"manifest goes last), only {', '.join(rels) or 'its files'} there; {fix}")]
    from tracebridge.schema.canonical import sha256_bytes

    todo = [p for p, h in files.items() if not (report / p).is_file() or sha256_bytes((report / p).read_bytes()) != h]
    if not (report / "manifest.json").is_file() or (report / "manifest.json").read_bytes() != pushing:
        todo.append("manifest.json")
    stale = [p for p in rels if p not in files and p != "manifest.json"]
    what = ([f"not there yet: {', '.join(todo)}"] if todo else []) + (
        [f"not yet removed (files its manifest does not list): {', '.join(stale)}"] if stale else [])
    return [f"{where}: incomplete report: a push of report {_report_id(pushing)} there was cut short or is still running; "
            + "; ".join([*what, fix])]


def _digest(folder: Path) -> str:
    """sha256 over the relative path and bytes of every file under ``folder``: two reads of one report compare."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def report_mismatch(report: Path, uri: str, expect: dict[str, str] | None) -> list[str]:
    """Problems of a verified report whose manifest fields differ from ``expect``: its sweep or bundle is not
    the one it was pulled for, or another attempt (``submission_id``) wrote it. A manifest that records no
    ``submission_id`` is not a problem here (``pull_report`` notes it)."""
    import json

    man = json.loads((Path(report) / "manifest.json").read_text())
    where = f"{uri.rstrip('/')}/manifest.json"
    probs = []
    for k, v in (expect or {}).items():
        if not v or man.get(k) == v or (k == "submission_id" and not man.get(k)):
            continue
        why = (f"written by {man[k]}, not by {v} ({v} pushed no report, or a later attempt replaced it; "
               f"`tracebridge pull {man[k]}` gets that one)" if k == "submission_id"
               else f"{man.get(k)} is not the expected {v} (the report of another sweep or bundle lies at that URI)")
        probs.append(f"{where}:{k}: {why}")
    return probs
