"""getUpdates dumps larger than ``max_line_bytes``: read line by line, never whole; a line longer than the
limit is quarantined with its file, line and size, and the other lines are harvested (read = accepted +
quarantined). A dump up to the limit is read whole as before (a response or an update list)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson
import pytest

from tests.feedback.conftest import reaction
from tracebridge.config import ConfigError, load_config
from tracebridge.feedback.config import FeedbackConfig
from tracebridge.feedback.harvest import harvest_dumps
from tracebridge.feedback.telegram import read_dump

LIMIT = 1024


def _long_line(size: int) -> bytes:
    return orjson.dumps({"update_id": 99, "pad": "x" * size}) + b"\n"


def test_an_overlong_dump_line_is_quarantined_with_its_size_and_the_rest_harvested(cfg, tmp_path):
    dump = tmp_path / "u.jsonl"
    long = _long_line(3 * LIMIT)
    dump.write_bytes(b"\xef\xbb\xbf" + orjson.dumps(reaction(1, 10, [], ["👍"])) + b"\n" + long
                     + orjson.dumps(reaction(2, 11, [], ["🔥"])) + b"\n")
    rep = harvest_dumps(dataclasses.replace(cfg, max_line_bytes=LIMIT), [dump])
    assert (rep.read, rep.accepted, rep.quarantined) == (3, 2, 1)
    q = [orjson.loads(x) for x in Path(cfg.quarantine).read_bytes().splitlines()]
    assert len(q) == 1 and q[0]["where"] == f"{dump}:2:<line>"
    assert q[0]["reason"].startswith(f"line of {len(long)} bytes, longer than max_line_bytes={LIMIT}")


def test_a_dump_up_to_the_limit_is_read_whole_as_one_document(tmp_path):
    dump = tmp_path / "u.json"
    dump.write_bytes(orjson.dumps({"ok": True, "result": [reaction(1, 10, [], ["👍"]), reaction(2, 10, ["👍"], [])]},
                                  option=orjson.OPT_INDENT_2))
    assert [w for w, _ in read_dump(dump, 1 << 20)] == [f"{dump}:result[0]", f"{dump}:result[1]"]


def test_max_line_bytes_of_feedback_is_a_checked_config_key():
    assert load_config(FeedbackConfig, "configs/feedback/default.yaml", ["max_line_bytes=4096"]).max_line_bytes == 4096
    with pytest.raises(ConfigError, match="max_line_bytes=100: must be >= 1024"):
        load_config(FeedbackConfig, "configs/feedback/default.yaml", ["max_line_bytes=100"])


def test_an_overlong_openclaw_transcript_line_is_quarantined_and_reactions_after_it_harvested(cfg, tmp_path):
    """The reaction harvest read each transcript line whole, however long."""
    from tests.feedback.test_harvest import _transcript
    from tracebridge.feedback.harvest_openclaw import harvest_openclaw

    src = _transcript(tmp_path / "s1.jsonl", "x" * 4 * LIMIT, "System: Telegram reaction added: 👍 by Ada on msg 10")
    rep = harvest_openclaw(dataclasses.replace(cfg, max_line_bytes=LIMIT), [src])
    assert rep.read == rep.accepted + rep.quarantined and (rep.read, rep.quarantined) == (2, 1)
    q = [orjson.loads(x) for x in Path(cfg.quarantine).read_bytes().splitlines()]
    assert [r["where"] for r in q] == [f"{src}:2"] and q[0]["reason"].endswith("; not searched for a reaction")


def test_a_dump_larger_than_the_limit_with_no_update_is_refused_before_any_harvest(cfg, tmp_path):
    dump = tmp_path / "notes.jsonl"
    dump.write_bytes(b"".join(orjson.dumps({"note": i, "pad": "y" * 200}) + b"\n" for i in range(20)))
    assert dump.stat().st_size > LIMIT  # read line by line, as the harvest reads it
    with pytest.raises(ValueError, match=r"notes.jsonl: none of its 20 items is an update"):
        harvest_dumps(dataclasses.replace(cfg, max_line_bytes=LIMIT), [dump])
    assert not Path(cfg.harvest_log).exists() and not Path(cfg.quarantine).exists()


@pytest.mark.parametrize("shape", ["response", "list"])
def test_one_dump_document_over_the_limit_is_refused_naming_the_limit_it_needs(cfg, tmp_path, shape):
    """A getUpdates response (or update list) over max_line_bytes was one quarantined item: its updates, all of
    them, were not harvested, and the harvest exited 0 as 'read 1, quarantined 1'."""
    updates = [reaction(i, 10, [], ["👍"], user=i) for i in range(1, 30)]
    dump = tmp_path / "u.json"
    dump.write_bytes(orjson.dumps({"ok": True, "result": updates} if shape == "response" else updates))
    size = dump.stat().st_size
    assert size > LIMIT
    with pytest.raises(ValueError, match=f"one JSON document of {size} bytes, over max_line_bytes={LIMIT}.*"
                                         f"give max_line_bytes={size} or more, or write it as JSONL"):
        harvest_dumps(dataclasses.replace(cfg, max_line_bytes=LIMIT), [dump])
    assert not Path(cfg.harvest_log).exists() and not Path(cfg.quarantine).exists()
    rep = harvest_dumps(dataclasses.replace(cfg, max_line_bytes=max(size, LIMIT)), [dump])  # as the message says
    assert (rep.read, rep.applied, rep.quarantined) == (29, 29, 0)
