"""``ScanMemo``: a scan of rows that repeat their context (a bundle's conversation rows) finds the
same, row by row, with the memo as without it, and checks a repeated message once."""

from __future__ import annotations

import random

from tracebridge.curate.memo import ScanMemo
from tracebridge.curate.redact import Scanner
from tracebridge.testing.pii_corpus import build_corpus, corpus_config


def _rows(seed: int = 2) -> list[dict]:
    """Conversation rows as the views write them: each row holds every earlier message of its run,
    some of which hold planted values (long enough for the memo), plus keyed and argv secrets."""
    rng = random.Random(seed)
    texts = [d.text for d in build_corpus(seed, 300)]
    rows = []
    for run in range(6):
        history: list[dict] = []
        for turn in range(12):
            text = rng.choice(texts) + " " + "filler text of a tool output. " * rng.randint(0, 30)
            msg = {"role": rng.choice(["user", "tool", "assistant"]), "content": text}
            if turn % 5 == 0:
                msg = {"role": "assistant", "content": "", "tool_calls": [{"id": f"c{run}{turn}", "type": "function",
                       "function": {"name": "exec", "arguments": {"argv": ["mysql", "-u", "root", "--password",
                                                                          "correcthorse"], "api_key": "QWERTYUIOPASDF"}}}]}
            history.append(msg)
            rows.append({"messages": list(history), "tools": [{"type": "function", "function": {"name": "exec"}}],
                         "meta": {"run_id": f"r{run}", "labels": {"note": rng.choice(texts)[:80]}}})
    return rows


def test_rows_scanned_with_the_memo_find_the_same_row_by_row() -> None:
    cfg = corpus_config()
    rows = _rows()
    plain = [Scanner(cfg).scan(r) for r in rows]
    memo = ScanMemo()
    with_memo = [Scanner(cfg, memo=memo).scan(r) for r in rows]
    assert with_memo == plain
    assert sum(len(f) for f in plain) > 100  # values in many rows, each row counting its own
    assert memo.hits > memo.misses  # the context was checked once, not once a row


def test_a_small_memo_forgets_and_still_finds_the_same() -> None:
    cfg = corpus_config()
    rows = _rows(3)
    memo = ScanMemo(max_bytes=20_000)
    sc = Scanner(cfg, memo=memo)
    assert [sc.scan(r) for r in rows] == [Scanner(cfg).scan(r) for r in rows]
    assert memo._bytes <= 20_000 + max(len(str(r)) for r in rows)


def test_memo_keeps_only_values_of_min_bytes() -> None:
    memo = ScanMemo(max_bytes=1000, min_bytes=256)
    sc = Scanner(memo=memo)
    assert sc.scan({"text": "mail bob@example.com"}) == {("EMAIL", "text"): 1}
    assert memo.hits == memo.misses == 0  # too small to keep
    long = "mail bob@example.com " + "x " * 200
    assert sc.scan({"text": long}) == sc.scan({"text": long}) == {("EMAIL", "text"): 1}
    assert memo.hits == 1 and memo.misses == 1
    memo.put(b"k" * 900, 900, True)  # over max_bytes: everything held before is forgotten
    assert memo.get((long, ())) is None and memo.get(b"k" * 900) is True
