"""A run built in the export's own process hands its rows to the bundle as lines, not joined into one
buffer first (``BundleWriter.write_lines``): the file, its hash and its counts are those of the same
rows written joined (``write_rows``), past one ``writev``'s worth of lines and after a short write."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import orjson
import pytest

from tracebridge.export import bundle
from tracebridge.export.bundle import BundleWriter

_REL = "views/worker_sft/train.jsonl"


def _lines(n: int) -> list[bytes]:
    return [orjson.dumps({"messages": [{"role": "user", "content": "x" * (i % 97)}], "i": i},
                         option=orjson.OPT_APPEND_NEWLINE) for i in range(n)]


def _written(tmp: Path, lines: list[bytes], joined: bool) -> tuple[bytes, str, int, int]:
    w = BundleWriter(tmp)
    half = len(lines) // 2
    for part in (lines[:half], lines[half:]):  # two runs' shares of the same file
        if joined:
            w.write_rows(_REL, b"".join(part), len(part))
        else:
            w.write_lines(_REL, part, sum(map(len, part)))
    entry = next(e for e in w.close_rows() if e.path == _REL)
    return (w.tmp / _REL).read_bytes(), entry.sha256, entry.rows or 0, entry.bytes


def test_lines_make_the_file_and_hash_the_joined_rows_make(tmp_path: Path) -> None:
    lines = _lines(2 * 1024 + 300)  # more lines than one writev takes (IOV_MAX, 1024 here)
    data, sha, rows, size = _written(tmp_path / "lines", lines, joined=False)
    assert (data, sha, rows, size) == _written(tmp_path / "joined", lines, joined=True)
    assert data == b"".join(lines) and sha == hashlib.sha256(data).hexdigest() and rows == len(lines)


@pytest.mark.skipif(not hasattr(os, "writev"), reason="lines are joined where there is no writev")
def test_a_short_writev_is_finished_byte_for_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.writev

    def short(fd: int, buffers: list[bytes]) -> int:  # what a filling disk does: part of the batch, mid-line
        first = bytes(buffers[0])
        return real(fd, [first[: max(1, len(first) // 2)]])

    monkeypatch.setattr(bundle.os, "writev", short)
    lines = _lines(1500)
    data, sha, rows, _ = _written(tmp_path, lines, joined=False)
    assert data == b"".join(lines) and sha == hashlib.sha256(data).hexdigest() and rows == 1500
