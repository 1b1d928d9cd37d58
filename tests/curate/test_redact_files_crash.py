"""``tracebridge redact`` stopped midway (a full disk, a file size limit, SIGKILL) leaves no partial copy under
the redacted copy's name. Before, the copy was written in place: a kill or a full disk left a cut
``*.redacted.jsonl`` that read as complete (its unredacted rest simply missing), and a full disk was
reported against the input file ("in.jsonl: [Errno 27] File too large"), exit 2 as if nothing had run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tracebridge.curate.redact import Redactor
from tracebridge.curate.redact_files import redact_file

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _input(path: Path, lines: int) -> Path:
    row = '{"text": "mail bob@example.com about %d, card 4111 1111 1111 1111, %s"}\n'
    path.write_text("".join(row % (i, "x" * 200) for i in range(lines)))
    return path


def _redact(src: Path, out: Path, fsize_kib: int | None = None) -> subprocess.Popen[str]:
    """``tracebridge redact`` in a child; ``fsize_kib`` stands in for a full disk (``ulimit -f``: a write
    past it fails with EFBIG, Python ignoring SIGXFSZ)."""
    limit = f"ulimit -f {fsize_kib}; " if fsize_kib is not None else ""
    cmd = f'{limit}exec "{sys.executable}" -m tracebridge.cli redact "{src}" --out "{out}"'
    return subprocess.Popen(
        ["bash", "-c", cmd],
        env=ENV,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_copy_that_does_not_fit_names_the_copy_exits_1_and_leaves_no_partial_file(tmp_path):
    src, out = _input(tmp_path / "in.jsonl", 400), tmp_path / "out"
    copy = out / "in.redacted.jsonl"
    out.mkdir()
    redact_file(src, copy, Redactor())
    before = copy.read_bytes()
    assert b"bob@example.com" not in before and before.count(b"\n") == 400
    copy.unlink()
    p = _redact(src, out, fsize_kib=16)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 1, err
    assert f"{copy}: cannot be written (File too large)" in err and "no partial copy" in err
    assert sorted(os.listdir(out)) == []  # neither a cut copy nor its temporary file
    copy.write_bytes(before)  # a whole copy from an earlier run stays as it was
    p = _redact(src, out, fsize_kib=16)
    p.communicate(timeout=60)
    assert (
        p.returncode == 1
        and sorted(os.listdir(out)) == ["in.redacted.jsonl"]
        and copy.read_bytes() == before
    )


def test_a_redact_killed_midway_leaves_no_copy_under_its_name(tmp_path):
    src, out = _input(tmp_path / "in.jsonl", 20000), tmp_path / "out"
    p = _redact(src, out)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # kill it once it has written some of the copy
        tmps = [f for f in (os.listdir(out) if out.is_dir() else []) if f.endswith(".tmp")]
        if tmps and (out / tmps[0]).stat().st_size > 0:
            break
        time.sleep(0.005)
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    assert not (
        out / "in.redacted.jsonl"
    ).exists()  # only the hidden temporary file, never the copy's name
    assert [f for f in os.listdir(out) if not f.startswith(".")] == []
