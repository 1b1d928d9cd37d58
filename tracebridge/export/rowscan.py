"""Push's row check: every row of a bundle's JSONL files scanned for personal data and secrets
before the bundle leaves the host (the manifest's governance is a claim; the rows are what leaves),
and its other files too (``file_findings``: the report and config leave with them).

The rows are read run by run across the files (``rows_run_by_run``): a conversation row repeats its
run's earlier messages, and the views' messages recur in the Agent Lightning files, so the scan's
memo (``tracebridge.curate.memo``) checks each once. With ``workers`` > 1 the runs are shared out by
a hash of the ``run_id`` bytes of each line (found without parsing it): every worker reads every
line, parses and scans only its share, so a run's rows, and its memo hits, stay in one process.
Which worker takes a line changes nothing but the speed: each line has exactly one.
"""

from __future__ import annotations

import mmap
import multiprocessing
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import orjson

from tracebridge.export.bundle import Manifest

NOT_JSON = object()  # the row of a line that does not parse
_RUN_KEY = b'"run_id":"'
_TICK = 1000  # rows between progress updates
_WINDOW = 4 << 20  # bytes of a mapped file read before its pages are let go
_DONTNEED = getattr(mmap, "MADV_DONTNEED", None)
Progress = Callable[[int, int, str], None]


def _run_of(row: Any) -> Any:
    """The run a bundle row comes from (``meta.run_id``; an Agent Lightning triplet's
    ``metadata.run_id``), or None."""
    if not isinstance(row, dict):
        return None
    meta = row.get("meta", row.get("metadata"))
    return meta.get("run_id") if isinstance(meta, dict) else None


def _run_key(buf: bytes | mmap.mmap, pos: int, end: int) -> bytes:
    """The value of the last ``"run_id":"…"`` in ``buf[pos:end]`` (a row's meta comes after its
    messages; a key inside a message's text is escaped, so not found), or nothing."""
    at = buf.rfind(_RUN_KEY, pos, end)
    if at < 0:
        return b""
    start = at + len(_RUN_KEY)
    close = buf.find(b'"', start, end)
    return buf[start:close if close >= 0 else end]


def share_of(line: bytes, shares: int) -> int:
    """The worker (of ``shares``) that takes ``line``: a hash of its ``_run_key``."""
    return zlib.crc32(_run_key(line, 0, len(line))) % shares


def _lines(path: Path, share: tuple[int, int] | None) -> Iterator[tuple[int, bytes]]:
    """``(line number, line)`` of the lines of ``path`` that ``share`` takes (all with None). The file
    is mapped, not read: a worker's lines are copied out, the others' are only searched for their
    ``run_id`` (reading each line to skip it was 2.2 of 2.9 CPU seconds a worker on a 3 GB bundle)."""
    with open(path, "rb") as fh:
        try:
            mem = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # empty, or a file that cannot be mapped: read it
            for lineno, line in enumerate(fh, start=1):
                if share is None or share_of(line, share[1]) == share[0]:
                    yield lineno, line
            return
    with mem:
        pos, size, lineno, kept = 0, len(mem), 0, 0
        while pos < size:
            end = mem.find(b"\n", pos)
            end = size if end < 0 else end + 1
            lineno += 1
            if share is None or zlib.crc32(_run_key(mem, pos, end)) % share[1] == share[0]:
                yield lineno, mem[pos:end]
            pos = end
            if pos - kept >= _WINDOW and _DONTNEED is not None:
                # the pages read are let go: mapped, they counted in this process's RSS (the whole 3 GB bundle)
                done = pos - pos % mmap.PAGESIZE
                mem.madvise(_DONTNEED, kept, done - kept)
                kept = done


def rows_run_by_run(bundle: Path, paths: list[str], max_open: int = 64,
                    share: tuple[int, int] | None = None) -> Iterator[tuple[str, int, Any]]:
    """Every row of the JSONL files ``paths`` as ``(path, line number, row)`` (``NOT_JSON`` for a
    line that does not parse), the rows of one run from all files together: every file lists its
    runs in the export's order, so a run's rows lie at the same place in each. A row's context
    recurs across the files (``worker_sft``, its recovery rows and pairs, the Agent Lightning
    messages and triplets): read together, the scan's memo holds it still when it recurs (file by
    file it had forgotten it: a 2000-session bundle's files are 50-850 MB each). Whatever the order
    of the files, each row comes once: a round takes the run of the first row still unread and
    every file's next rows of that run. At most ``max_open`` files are open at once (a hand-made
    manifest may list thousands): more are read ``max_open`` at a time. ``share=(k, n)``: only
    the lines ``share_of`` gives to worker ``k`` of ``n`` (line numbers still count every line)."""
    if len(paths) > max_open:
        for at in range(0, len(paths), max_open):
            yield from rows_run_by_run(bundle, paths[at:at + max_open], max_open, share)
        return
    files = [_lines(bundle / p, share) for p in paths]
    try:
        heads: list[tuple[int, Any, Any] | None] = [None] * len(files)  # (line number, row, its run)

        def advance(i: int) -> None:
            got = next(files[i], None)
            if got is None:
                heads[i] = None
                return
            try:
                row = orjson.loads(got[1])
            except orjson.JSONDecodeError:
                row = NOT_JSON
            heads[i] = (got[0], row, _run_of(row))

        for i in range(len(files)):
            advance(i)
        while any(h is not None for h in heads):
            run = next(h for h in heads if h is not None)[2]
            for i, path in enumerate(paths):
                while (h := heads[i]) is not None and h[2] == run:
                    yield path, h[0], h[1]
                    advance(i)
    finally:
        for f in files:
            f.close()


def scan_config(bundle: Path) -> Any:
    """The redaction config push scans ``bundle`` with: every detector, and the ``ip_allowlist`` and
    ``phone_regions`` its export ran with (its ``export_config.yaml``), so addresses it was told to leave in
    (``redaction.ip_allowlist=[10.0.0.0/8]``, the help's example) are not found again: with the defaults, such a
    bundle passed both export passes and push refused it. Defaults when the file or its values do not read."""
    import yaml

    from tracebridge.curate.config import RedactionConfig

    cfg = RedactionConfig()
    try:
        red = (yaml.safe_load((bundle / "export_config.yaml").read_bytes()) or {}).get("redaction") or {}
        nets, regions = red.get("ip_allowlist"), red.get("phone_regions")
    except (OSError, yaml.YAMLError, AttributeError):
        return cfg
    for key, value in (("ip_allowlist", nets), ("phone_regions", regions)):
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            setattr(cfg, key, list(value))
    return cfg if not cfg.validate() else RedactionConfig()


def _scan(bundle: Path, paths: list[str], limit: int, share: tuple[int, int] | None,
          tick: Callable[[int], None]) -> list[tuple[int, int, str]]:
    """The first ``limit`` findings in the rows (of ``share``) as ``(file index, line, text)``;
    ``tick(rows)`` after every ``_TICK`` rows and at the end."""
    from tracebridge.curate.memo import ScanMemo
    from tracebridge.curate.redact import Scanner

    scanner = Scanner(scan_config(bundle), memo=ScanMemo())  # rows repeat their context: each message checked once
    index = {p: i for i, p in enumerate(paths)}
    out: list[tuple[int, int, str]] = []
    done = 0
    for done, (path, lineno, row) in enumerate(rows_run_by_run(bundle, paths, share=share), start=1):
        if done % _TICK == 0:
            tick(done)
        if row is NOT_JSON:
            out.append((index[path], lineno, f"{path}:{lineno}: not JSON"))
        else:
            found = scanner.scan(row if isinstance(row, dict) else {"row": row})
            out += [(index[path], lineno, f"{path}:{lineno}:{field}: {kind} found") for kind, field in sorted(found)]
        if len(out) >= limit:
            break
    tick(done)
    return out[:limit]


_COUNTS: Any = None  # a worker's view of the rows each worker has checked (shared memory)


def _init_worker(counts: Any) -> None:
    global _COUNTS
    _COUNTS = counts


def _scan_share(bundle: Path, paths: list[str], limit: int, share: tuple[int, int]) -> list[tuple[int, int, str]]:
    def tick(rows: int) -> None:
        _COUNTS[share[0]] = rows

    return _scan(bundle, paths, limit, share, tick)


def row_findings(bundle: Path, man: Manifest, limit: int = 5, progress: Progress | None = None,
                 workers: int = 1) -> list[str]:
    """``file:line:field: <type> found`` for rows that still hold personal data or secrets (at most
    ``limit``, in file and line order), scanned by ``workers`` processes; ``progress(done, total,
    "rows checked")`` follows the rows."""
    jsonl = [f for f in man.files if f.path.endswith(".jsonl")]
    # the views first: the Agent Lightning rows (and their other field names) repeat the views' messages
    paths = sorted((f.path for f in jsonl), key=lambda p: not p.startswith("views/"))
    total = sum(f.rows or 0 for f in jsonl)

    def report(done: int) -> None:
        if progress is not None:
            progress(done, max(total, done), "rows checked")

    if workers <= 1 or not paths:
        found = _scan(bundle, paths, limit, None, report)
    else:
        found = _in_workers(bundle, paths, limit, workers, report)
    return [text for _, _, text in sorted(found)[:limit]]


def file_findings(bundle: Path, man: Manifest, limit: int = 5) -> list[str]:
    """``row_findings`` of the bundle's files other than its JSONL rows (``report.json``, ``report.md``,
    ``export_config.yaml``, a file added by hand and resealed): they leave the host with the rows. A JSON
    file's findings name the field (``report.json:dedup.note: email found``), others the line."""
    from tracebridge.curate.redact import Scanner

    scanner, out = Scanner(scan_config(bundle)), []
    for f in man.files:
        if f.path.endswith(".jsonl") or len(out) >= limit:
            continue
        path = bundle / f.path
        if f.path.endswith(".json"):
            try:
                doc = orjson.loads(path.read_bytes())
            except orjson.JSONDecodeError:
                doc = NOT_JSON  # scanned line by line below
            if doc is not NOT_JSON:
                found = scanner.scan(doc if isinstance(doc, dict) else {"": doc})
                out += [f"{f.path}:{field}: {kind} found" for kind, field in sorted(found)]
                continue
        with open(path, "rb") as fh:
            for lineno, line in enumerate(fh, start=1):
                found = scanner.scan({"line": line.decode("utf-8", errors="replace")})
                out += [f"{f.path}:{lineno}: {kind} found" for kind, _ in sorted(found)]
    return out[:limit]


def _in_workers(bundle: Path, paths: list[str], limit: int, workers: int,
                report: Callable[[int], None]) -> list[tuple[int, int, str]]:
    """``_scan`` of each share in its own process (forked where the platform can: the detectors'
    compiled patterns come along), the rows checked followed through shared counters."""
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    counts = ctx.RawArray("q", workers)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(counts,)) as pool:
        futures = [pool.submit(_scan_share, bundle, paths, limit, (k, workers)) for k in range(workers)]
        pending = set(futures)
        while pending:
            _, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
            report(sum(counts))
            if any(f.exception() is not None for f in futures if f.done()):
                break
        return [hit for f in futures for hit in f.result()]
