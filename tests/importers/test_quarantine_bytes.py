"""The quarantine keeps the bytes of a line that is not UTF-8 (before, each invalid byte became U+FFFD
and the line could not be recovered): escaped as capture escapes undecodable bytes, ``raw_bytes`` undoes it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest

from tests.importers.conftest import MAIN, lazy_importorskip
from tracebridge.importers.openclaw import import_openclaw
from tracebridge.importers.openclaw.state import Quarantine, raw_bytes

SPANS = Path(__file__).resolve().parents[1] / "data" / "agentlightning" / "agentops_openai_spans.jsonl"
BAD = [b'{"type":"message","id":"x\xff\xfe","message":{"role":"user","content":"caf\xe9"}}',
       b"\\udcff is text here, \xc3 is not",  # a line holding the escape's own text: still unambiguous
       b"\x80\\\x81 plain \xe2\x82"]


def _rows(path: Path) -> list[dict]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def test_openclaw_quarantine_keeps_the_bytes_of_non_utf8_lines(tmp_path):
    src = tmp_path / "s.jsonl"
    src.write_bytes(MAIN.read_bytes() + b"\n".join(BAD) + b"\n")
    rep = import_openclaw([src], tmp_path / "t")
    assert rep.reconciles and rep.lines_quarantined >= len(BAD)
    rows = [r for r in _rows(tmp_path / "t" / ".import" / "openclaw-quarantine.jsonl") if r.get("raw_escaped")]
    assert [raw_bytes(r) for r in rows] == BAD
    assert all(hashlib.sha256(raw_bytes(r)).hexdigest() == r["sha256"] for r in rows)
    assert "\ufffd" not in rows[0]["raw"] and "\\udcff\\udcfe" in rows[0]["raw"]  # readable, and reversible


def test_agentlightning_quarantine_keeps_the_bytes_of_non_utf8_lines(tmp_path):
    lazy_importorskip("agentlightning")
    from tracebridge.importers.agentlightning.importer import import_agentlightning

    src = tmp_path / "spans.jsonl"
    src.write_bytes(SPANS.read_bytes() + b"\n".join(BAD) + b"\n")
    rep = import_agentlightning([src], tmp_path / "t")
    assert rep.reconciles and rep.lines_quarantined == len(BAD)
    rows = _rows(tmp_path / "t" / ".import" / "agentlightning-quarantine.jsonl")
    assert [raw_bytes(r) for r in rows] == BAD


@pytest.mark.parametrize("raw", [b"plain", "caf\u00e9".encode(), *BAD])
def test_raw_bytes_undoes_what_add_wrote(tmp_path, raw):
    q = Quarantine(tmp_path / "q.jsonl")
    q.add("f", 1, "<line>", "why", raw)
    q.close()
    (row,) = _rows(tmp_path / "q.jsonl")
    assert raw_bytes(row) == raw and ("raw_escaped" in row) == (raw not in (b"plain", "caf\u00e9".encode()))
