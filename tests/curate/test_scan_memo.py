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


def test_a_dict_recurring_under_other_fields_counts_under_each() -> None:
    """A counting scan remembers what a dict holds below it, not where it was: the same message under
    ``messages`` and under ``prompt``, and a key that holds a value (``.<key>`` paths), are counted
    under each field they recur in, as a scan without the memo counts them."""
    cfg = corpus_config()
    texts = [d.text for d in build_corpus(5, 12)][:12]
    msgs = [{"role": "user", "content": t + " and more text to pass the memo's floor " * 3} for t in texts]
    msgs.append({"role": "tool", "content": "ok", "args": {"bob@example.com": "key", "api_key": "QWERTYUIOPASDF12",
                                                           "nested": {"ip": "10.20.30.40 " * 12}}})
    rows = []
    for i in range(1, len(msgs) + 1):
        rows.append({"messages": msgs[:i], "meta": {"run_id": "r1", "event_ids": [f"r1:{n:08d}" for n in range(i)]}})
        rows.append({"prompt": msgs[:i], "response": msgs[i - 1], "metadata": {"run_id": "r1"}})
    memo = ScanMemo()
    sc = Scanner(cfg, memo=memo)
    got = [sc.scan(r) for r in rows]
    assert got == [Scanner(cfg).scan(r) for r in rows]
    last = got[-2]
    assert {("EMAIL", "messages.args.<key>"), ("IPV4", "messages.args.nested.ip")} <= set(last), last
    assert ("EMAIL", "prompt.args.<key>") in got[-1] and ("EMAIL", "response.args.<key>") in got[-1], got[-1]
    assert memo.hits > 2 * memo.misses


def test_short_repeated_ids_are_checked_once() -> None:
    """Ids a row's meta repeats (a run's event ids, in every row of it) are kept from 32 bytes on: an
    id whose hash is all digits trips the digit trigger and the phone check in every row otherwise."""
    memo = ScanMemo()
    sc = Scanner(memo=memo)
    ids = [f"oc-00b5094c-3b1d-4b2f-99f1-60d4b0769175:{n:08d}" for n in range(40)]
    for i in range(1, 41):
        assert sc.scan({"meta": {"event_ids": ids[:i]}}) == {}
    assert memo.misses <= 2 * 40 + 40 and memo.hits >= 40 * 39 // 2  # each id checked once, found again after


def test_empty_and_odd_keys_are_named_as_without_the_memo() -> None:
    odd = {"": {"": {"x": "mail bob@example.com " + "pad " * 20}}, ".": {"ip": "10.20.30.40 " * 10}}
    rows = [{"messages": [odd]}, {"prompt": [odd]}, {"": odd}, {"messages": [odd, odd]}]
    sc = Scanner(memo=ScanMemo())
    got = [sc.scan(r) for r in rows]
    assert got == [Scanner().scan(r) for r in rows]
    assert ("EMAIL", "messages...x") in got[0] and ("EMAIL", "prompt...x") in got[1], got
