"""A file that is not a reaction ledger (or chunk registry) given as one: refused (exit 2, naming its
file:line), nothing appended and no ``<file>.lock`` left beside it. They appended a JSON row to any
file (a Makefile, README.md) and exited 0."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.feedback.conftest import feedback_cli, reaction
from tracebridge.feedback.harvest import harvest_updates
from tracebridge.feedback.ledger import edge_problem, ledger_row_problem

ROOT = Path(__file__).resolve().parents[2]


def _copy(src: str, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes((ROOT / src).read_bytes())
    return dst


def test_harvest_refuses_a_ledger_that_is_another_file(cfg, tmp_path):
    dump = tmp_path / "u.json"
    dump.write_bytes(orjson.dumps([reaction(1, 10, [], ["👍"])]))
    registry = tmp_path / "sent-chunks.jsonl"  # JSONL of another kind
    registry.write_bytes(b'{"batch_id": "b:1", "chat": 42, "message_id": 10, "chunk_index": 0}\n')
    for other in (_copy("Makefile", tmp_path / "x.txt"), registry):
        before = other.read_bytes()
        code, out = feedback_cli(cfg, "harvest", "--updates", str(dump), "--ledger", str(other))
        assert code == 2 and f"not a reaction ledger: {other}:1: " in out, out
        assert other.read_bytes() == before and not Path(f"{other}.lock").exists()


def test_only_the_last_line_is_read_past_a_large_ledger(cfg, tmp_path):
    """A ledger's first and last lines are checked (its head and tail), not every line: a foreign last line
    (a file appended to a ledger) is named by its number; a row cut short by a killed writer is no reason."""
    harvest_updates(cfg, [(f"t:{i}", reaction(i, 10 + i, [], ["👍"])) for i in range(1, 4000)], "getUpdates", ["t"])
    ledger = Path(cfg.ledger)
    assert ledger.stat().st_size > 1 << 17 and edge_problem(ledger, ledger_row_problem) is None
    with open(ledger, "ab") as fh:
        fh.write(b'{"time": "2026-02-25T06:13:20Z", "chat": 42, "mess')  # torn
    assert edge_problem(ledger, ledger_row_problem) is None
    with open(ledger, "ab") as fh:
        fh.write(b"\nall: build\n\n")
    assert edge_problem(ledger, ledger_row_problem) == f"{ledger}:4001: not JSON ('all: build')"


def test_chunks_record_refuses_a_registry_that_is_another_file(cfg, tmp_path):
    readme = _copy("README.md", tmp_path / "README.md")
    before = readme.read_bytes()
    code, out = feedback_cli(cfg, "chunks", "record", "--chat", "42", "--message-ids", "11", "--run-id", "r4",
                             "--event-id", "e4", "--registry", str(readme))
    assert code == 2 and f"not a chunk registry: {readme}:1: not JSON" in out, out
    assert readme.read_bytes() == before and not Path(f"{readme}.lock").exists()
    args = ("chunks", "record", "--chat", "42", "--message-ids", "11", "--run-id", "r4", "--event-id", "e4")
    for _ in range(2):  # the config's registry, new: recorded, then again (no conflict with its own rows)
        code, doc = feedback_cli(cfg, *args)
        assert code == 0 and doc["registry"] == cfg.registry, doc


def test_an_empty_or_blank_ledger_is_a_ledger(tmp_path):
    """A harvest that found nothing leaves an empty ledger (``touch``): the next one goes on."""
    for text in (b"", b"\n\n", b"\xef\xbb\xbf\n"):
        (tmp_path / "l.jsonl").write_bytes(text)
        assert edge_problem(tmp_path / "l.jsonl", ledger_row_problem) is None
