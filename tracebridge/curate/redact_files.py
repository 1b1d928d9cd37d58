"""Ad-hoc redaction of any JSONL or text file (``tracebridge redact``), with the same detectors.

JSONL lines that parse are redacted as records (structural keys such as ids and hashes are left
alone, as in traces); other lines, and every line of a text file, are redacted as free text.
Placeholders are consistent within a file. The summary counts findings by type and field
(``line`` for text), never their values. A redacted copy is written under a hidden temporary name
beside it and renamed into place once whole, so a killed run or a full disk never leaves a partial
copy under the copy's name (one that reads as complete and whose last lines were never redacted).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import orjson

from tracebridge.curate.redact import Redactor, nest_findings

JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")


@dataclass
class FileResult:
    """What redacting one file found and wrote."""

    src: str
    dst: str | None
    lines: int = 0
    changed_lines: int = 0
    findings: Counter[tuple[str, str]] = field(default_factory=Counter)
    text_lines: int = 0  # of a JSON file: lines that are no JSON record, redacted as text
    text_first: list[int] = field(default_factory=list)  # their first line numbers

    def to_dict(self) -> dict[str, Any]:
        """The result as a report entry: counts, and findings as ``{type: {field: n}}``; for a JSON
        file, the lines redacted as text (no JSON object or array): how many and the first few."""
        out = {"file": self.src, "out": self.dst, "lines": self.lines, "changed_lines": self.changed_lines,
               "findings_total": sum(self.findings.values()), "findings": nest_findings(self.findings)}
        if self.text_lines:
            out["not_json_lines"] = {"lines": self.text_lines, "first": self.text_first}
        return out


def redacted_name(src: Path) -> str:
    """``notes.txt`` → ``notes.redacted.txt``."""
    return f"{src.stem}.redacted{src.suffix}" if src.suffix else f"{src.name}.redacted"


def redacted_paths(files: list[Path], out: Path) -> dict[Path, Path]:
    """Where each input's redacted copy goes: ``out/<name>.redacted<suffix>`` when the names are
    unique, else the inputs' paths below their common folder (two runs' ``events.jsonl`` go to
    ``out/<run>/events.redacted.jsonl``, never one over the other). A file given twice appears once.
    """
    first: dict[Path, Path] = {}  # resolved path -> the input as first given
    for f in files:
        first.setdefault(f.resolve(), f)
    if len({f.name for f in first.values()}) == len(first):
        return {f: out / redacted_name(f) for f in first.values()}
    base = Path(os.path.commonpath([r.parent for r in first]))
    return {f: out / r.parent.relative_to(base) / redacted_name(f) for r, f in first.items()}


def _redact_line(red: Redactor, line: str, scope: str, as_json: bool) -> str | None:
    """The redacted line; None for a line of a JSON file that is no JSON record (the caller redacts it as text)."""
    if as_json and line.lstrip()[:1] in ("{", "["):
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            obj = None
        try:
            if isinstance(obj, dict):
                out = red.redact(obj, scope=scope)
                return line if out is obj else orjson.dumps(out).decode()
            if isinstance(obj, list):
                out = red.redact({"items": obj}, scope=scope)
                return line if out["items"] is obj else orjson.dumps(out["items"]).decode()
        except orjson.JSONEncodeError:  # nested deeper than orjson writes (254 levels): redacted as text
            pass
    return None if as_json and line.strip() else red.redact_text(line, scope, "line")


class WriteError(OSError):
    """The redacted copy could not be written (a full disk, a file size limit): ``filename`` is the copy."""


def redact_file(src: str | os.PathLike[str], dst: str | os.PathLike[str] | None, red: Redactor) -> FileResult:
    """Redact ``src`` line by line into ``dst`` (None = only count findings).

    The copy goes to ``.<name>.<pid>.tmp`` beside ``dst`` and is renamed to ``dst`` when whole (and
    synced); on any failure the temporary file is removed and ``dst`` is left as it was.

    Raises:
        WriteError: ``dst`` could not be written (its path is the error's ``filename``).
        OSError: ``src`` cannot be read.
    """
    src = Path(src)
    scope = f"file:{src}"
    res = FileResult(str(src), str(dst) if dst is not None else None)
    as_json = src.suffix.lower() in JSON_SUFFIXES
    copy = Path(dst) if dst is not None else None
    tmp = copy.with_name(f".{copy.name}.{os.getpid()}.tmp") if copy is not None else Path()
    out = _open_copy(tmp, copy) if copy is not None else None
    try:
        with open(src, encoding="utf-8", errors="surrogateescape", newline="") as fh:
            for raw in fh:
                body = raw.rstrip("\r\n")
                end = raw[len(body):]
                new = _redact_line(red, body, scope, as_json)
                res.lines += 1
                if new is None:
                    new = red.redact_text(body, scope, "line")
                    res.text_lines += 1
                    if len(res.text_first) < 10:
                        res.text_first.append(res.lines)
                res.changed_lines += new != body
                if out is not None:
                    _write(out, new + end, copy)  # type: ignore[arg-type]
        if out is not None:
            _finish_copy(out, tmp, copy)  # type: ignore[arg-type]
            out = None
    finally:
        if out is not None:  # stopped midway (an error, Ctrl-C): no partial copy is left
            try:
                out.close()
            except OSError:
                pass
            tmp.unlink(missing_ok=True)
    res.findings = red.flat_findings(scope)
    red.forget(scope)
    return res


def _write_error(exc: OSError, dst: Path) -> WriteError:
    return WriteError(exc.errno, exc.strerror or str(exc), str(dst))


def _open_copy(tmp: Path, dst: Path) -> TextIO:
    # surrogateescape: bytes that are not UTF-8 pass through unchanged (as text lines), never replaced by U+FFFD
    try:
        return open(tmp, "w", encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise _write_error(exc, dst) from exc


def _write(out: TextIO, text: str, dst: Path) -> None:
    try:
        out.write(text)
    except OSError as exc:
        raise _write_error(exc, dst) from exc


def _finish_copy(out: TextIO, tmp: Path, dst: Path) -> None:
    """Flush, sync and close the temporary copy, then rename it to ``dst``."""
    try:
        try:
            out.flush()
            os.fsync(out.fileno())
        finally:
            out.close()
        os.replace(tmp, dst)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _write_error(exc, dst) from exc
