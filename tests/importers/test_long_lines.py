"""Lines longer than ``max_line_bytes`` in every reader of line-delimited input: quarantined or reported
with file, line and size, read past in bounded chunks (never held whole), and the rest of the file read.
The limit is small here (1 KiB) so that the files stay small; the behaviour is the same at 16 MiB."""

from __future__ import annotations

import os

import orjson
import pytest

from tests.importers.conftest import lazy_importorskip
from tracebridge.capture.reader import HEAD_BYTES, MAX_LINE_BYTES, RunDir, iter_lines
from tracebridge.config import ConfigError, load_config
from tracebridge.importers.agentlightning.config import SpanImportConfig
from tracebridge.importers.config import ImportConfig
from tracebridge.importers.openclaw import import_openclaw
from tracebridge.schema.validate import check_run

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
LIMIT = 1024


def _row(rid: str, text: str = "hi") -> bytes:
    return orjson.dumps({"type": "message", "id": rid, "timestamp": "2026-01-01T00:00:00.000Z",
                         "message": {"role": "user", "content": text}}) + b"\n"


def _cfg(**kw: object) -> ImportConfig:
    return ImportConfig(max_line_bytes=LIMIT, **kw)  # type: ignore[arg-type]


def _quarantined(out) -> list[dict]:
    return [ln.obj for ln in iter_lines(out / ".import" / "openclaw-quarantine.jsonl")]


@pytest.mark.parametrize("size", [LIMIT + 1, 5 * LIMIT, 3 << 20])
def test_an_overlong_openclaw_line_is_quarantined_with_its_size_and_the_rest_imports(tmp_path, size):
    """A 50 MB line was read whole (242 MB peak RSS) and there was no limit at all."""
    long = _row("big", "x" * size)
    src = tmp_path / "s.jsonl"
    src.write_bytes(_row("a") + long + _row("b"))
    rep = import_openclaw([src], tmp_path / "t", _cfg(final=True))
    assert rep.reconciles and (rep.lines_read, rep.lines_accepted, rep.lines_quarantined) == (3, 2, 1)
    why = f"line of {len(long)} bytes, longer than max_line_bytes={LIMIT}"
    assert rep.quarantine_samples == [(f"{src}:2: <line>: {why}: skipped without reading it "
                                      "(raise max_line_bytes to read it)")]
    q = _quarantined(tmp_path / "t")
    assert [(r["line"], r["field"]) for r in q] == [(2, "<line>")] and len(q[0]["raw"]) == HEAD_BYTES
    assert rep.bytes_read == src.stat().st_size


def _padded(rid: str, size: int) -> bytes:
    """A row of exactly ``size`` bytes before its newline."""
    body = _row(rid)
    return body[:-2] + b" " * (size - len(body) + 1) + b"}\n"


def test_a_line_of_exactly_the_limit_is_read_one_byte_more_is_not(tmp_path):
    """The limit counts the line's bytes without its line end, in the middle and at the end of a file."""
    src = tmp_path / "s.jsonl"
    src.write_bytes(_padded("a", LIMIT) + _padded("b", LIMIT + 1) + _padded("c", LIMIT)[:-1])
    rep = import_openclaw([src], tmp_path / "t", _cfg(final=True))
    assert rep.reconciles and (rep.lines_accepted, rep.lines_quarantined) == (2, 1)
    assert rep.quarantine_samples[0].startswith(f"{src}:2: <line>: line of {LIMIT + 2} bytes")


def test_an_overlong_line_in_the_imported_prefix_is_read_past_again_when_the_file_grows(tmp_path):
    src = tmp_path / "s.jsonl"
    src.write_bytes(_row("a") + _row("big", "x" * 4 * LIMIT))
    first = import_openclaw([src], tmp_path / "t", _cfg())
    assert (first.lines_accepted, first.lines_quarantined) == (1, 1)
    with open(src, "ab") as fh:
        fh.write(_row("b"))
    second = import_openclaw([src], tmp_path / "t", _cfg())
    assert second.reconciles and second.skipped == [] and (second.files_appended, second.lines_replayed) == (1, 2)
    assert (second.lines_read, second.lines_accepted, second.lines_quarantined) == (1, 1, 0)
    assert len(_quarantined(tmp_path / "t")) == 1


def test_an_overlong_last_line_still_being_written_waits_for_the_next_import(tmp_path):
    """A live transcript's last line without its newline is left for the next import, long or not."""
    src = tmp_path / "s.jsonl"
    long = _row("big", "x" * 4 * LIMIT)
    src.write_bytes(_row("a") + long[:-10])
    first = import_openclaw([src], tmp_path / "t", _cfg())
    assert (first.lines_read, first.lines_accepted, first.lines_pending) == (1, 1, 1)
    with open(src, "ab") as fh:
        fh.write(long[-10:] + _row("b"))
    second = import_openclaw([src], tmp_path / "t", _cfg())
    assert second.reconciles and (second.lines_read, second.lines_accepted, second.lines_quarantined) == (2, 1, 1)
    assert second.quarantine_samples[0].startswith(f"{src}:2: <line>: line of {len(long)} bytes")


def test_max_line_bytes_is_a_config_key_overridable_and_checked(tmp_path):
    cfg = load_config(ImportConfig, "configs/import/openclaw.yaml", ["max_line_bytes=2048"])
    assert cfg.max_line_bytes == 2048 and ImportConfig().max_line_bytes == 16 << 20
    with pytest.raises(ConfigError, match="max_line_bytes=10: must be >= 1024"):
        load_config(ImportConfig, "configs/import/openclaw.yaml", ["max_line_bytes=10"])
    assert "max_line_bytes=0: must be >= 1024" in SpanImportConfig(max_line_bytes=0).validate()[0]


def _event_line(i: int, pad: int = 0) -> bytes:
    return orjson.dumps({"event_type": "x", "pad": "y" * pad, "i": i}) + b"\n"


def test_an_overlong_events_line_is_a_bad_line_of_validate_with_its_size(tmp_path):
    run = tmp_path / "r1"
    run.mkdir()
    (run / "events.jsonl").write_bytes(_event_line(1) + _event_line(2, 3 << 20) + _event_line(3))
    lines = list(iter_lines(run / "events.jsonl", keep_raw=True, max_line_bytes=LIMIT))
    assert [ln.lineno for ln in lines] == [1, 2, 3] and [ln.error is None for ln in lines] == [True, False, True]
    assert lines[1].error.startswith(f"line of {len(_event_line(2, 3 << 20))} bytes, longer than max_line_bytes=")
    assert len(lines[1].raw) == HEAD_BYTES and not lines[1].torn



def test_validate_reports_an_events_line_past_16_mib_and_checks_the_others(tmp_path):
    run = tmp_path / "r1"
    run.mkdir()
    big = _event_line(2, MAX_LINE_BYTES)
    (run / "events.jsonl").write_bytes(_event_line(1) + big + _event_line(3))
    chk = check_run(RunDir(run))
    assert (chk.events, chk.bad_lines) == (2, 1)
    assert [(p.line, p.field, p.message) for p in chk.problems if p.kind == "json"] == [
        (2, "<line>", (f"line of {len(big)} bytes, longer than max_line_bytes={MAX_LINE_BYTES}: skipped without "
                      "reading it (raise max_line_bytes to read it)"))]


def test_an_overlong_span_line_is_quarantined_and_the_rest_read(tmp_path):
    lazy_importorskip("agentlightning")
    from tracebridge.importers.agentlightning.importer import import_agentlightning

    src = tmp_path / "spans.jsonl"
    long = b'{"rollout_id": "' + b"r" * 4 * LIMIT + b'"}\n'
    src.write_bytes(b"{}\n" + long + b"[]\n")
    rep = import_agentlightning([src], tmp_path / "t", SpanImportConfig(max_line_bytes=LIMIT, final=True))
    assert rep.reconciles and (rep.lines_read, rep.lines_quarantined) == (3, 3)
    assert rep.quarantine_samples[1].startswith(f"{src}:2: <line>: line of {len(long)} bytes, longer than")
    assert rep.bytes_read == src.stat().st_size


def test_an_overlong_last_span_line_still_being_written_waits_then_is_quarantined(tmp_path):
    lazy_importorskip("agentlightning")
    from tracebridge.importers.agentlightning.importer import import_agentlightning

    src = tmp_path / "spans.jsonl"
    long = b'{"rollout_id": "' + b"r" * 4 * LIMIT + b'"}\n'
    src.write_bytes(b"{}\n" + long[:-5])
    cfg = SpanImportConfig(max_line_bytes=LIMIT)
    first = import_agentlightning([src], tmp_path / "t", cfg)
    assert (first.lines_read, first.lines_pending, first.bytes_read) == (1, 1, 3)
    with open(src, "ab") as fh:
        fh.write(long[-5:])
    second = import_agentlightning([src], tmp_path / "t", cfg)
    assert second.reconciles and (second.lines_read, second.lines_quarantined, second.lines_pending) == (1, 1, 0)
    assert second.quarantine_samples == [(f"{src}:2: <line>: line of {len(long)} bytes, longer than max_line_bytes="
                                         f"{LIMIT}: skipped without reading it (raise max_line_bytes to read it)")]
