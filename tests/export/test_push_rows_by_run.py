"""Push reads a bundle's rows run by run across its files (``rows_run_by_run``), so a message the
views and the Agent Lightning files repeat is scanned once; every row still comes once, with its own
file and line, whatever the files hold."""

from __future__ import annotations

from pathlib import Path

import orjson

from tracebridge.export.rowscan import NOT_JSON, rows_run_by_run


def _write(path: Path, lines: list[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def _row(run: str | None, n: int, key: str = "meta") -> bytes:
    return orjson.dumps({"n": n, key: {"run_id": run}} if run else {"n": n})


def test_rows_of_a_run_come_together_and_every_row_comes_once(tmp_path: Path) -> None:
    _write(tmp_path / "views/a.jsonl", [_row("r1", 1), _row("r1", 2), _row("r2", 3), _row("r4", 4)])
    _write(tmp_path / "views/b.jsonl", [_row("r2", 5), b"{torn", _row("r3", 6), _row("r4", 7)])
    _write(tmp_path / "al/t.jsonl", [_row("r1", 8, "metadata"), _row("r3", 9, "metadata"), _row(None, 10),
                                     b"[1, 2]"])
    _write(tmp_path / "empty.jsonl", [])
    got = list(rows_run_by_run(tmp_path, ["views/a.jsonl", "views/b.jsonl", "al/t.jsonl", "empty.jsonl"]))
    where = [(p, line) for p, line, _ in got]
    assert sorted(where) == sorted({(p, line) for p, line in where})  # none twice
    assert len(got) == 12
    assert [(p, line, r if r is NOT_JSON else (r["n"] if isinstance(r, dict) else r)) for p, line, r in got] == [
        ("views/a.jsonl", 1, 1), ("views/a.jsonl", 2, 2), ("al/t.jsonl", 1, 8),  # r1 from both files
        ("views/a.jsonl", 3, 3), ("views/b.jsonl", 1, 5),  # r2
        # r4 is a's next run; b's torn line and r3 wait (no run), then come as their own rounds
        ("views/a.jsonl", 4, 4),
        ("views/b.jsonl", 2, NOT_JSON),
        ("views/b.jsonl", 3, 6), ("al/t.jsonl", 2, 9),  # r3
        ("views/b.jsonl", 4, 7),  # r4 again: b's rows of it, after a's
        ("al/t.jsonl", 3, 10), ("al/t.jsonl", 4, [1, 2]),  # rows of no run
    ]


def test_many_files_are_read_a_few_at_a_time(tmp_path: Path) -> None:
    paths = []
    for i in range(7):
        paths.append(f"views/v{i}.jsonl")
        _write(tmp_path / paths[-1], [_row(f"r{j}", 10 * i + j) for j in range(3)])
    few = list(rows_run_by_run(tmp_path, paths, max_open=3))
    assert sorted((p, line, r["n"]) for p, line, r in few) == sorted(
        (p, line, r["n"]) for p, line, r in rows_run_by_run(tmp_path, paths))
    assert len(few) == 21
    # within each group of three files, a run's rows come together
    assert [r["n"] for _, _, r in few[:9]] == [0, 10, 20, 1, 11, 21, 2, 12, 22]
