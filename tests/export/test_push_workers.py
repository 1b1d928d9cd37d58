"""Push's row check in several processes (``push --workers N``, ``rowscan.row_findings``): the runs
are shared out by a hash of each line's ``run_id`` bytes, every line goes to exactly one worker, and
the findings, the rows counted and the push's verdict are those of one process."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

import tracebridge.cli  # noqa: F401 - registers every command module
from tests.export.conftest import PII, mixed_traces  # noqa: F401 - the fixture
from tracebridge.cli.app import app
from tracebridge.export.bundle import compute_bundle_id, sha256_file, verify_bundle
from tracebridge.export.pipeline import export_traces
from tracebridge.export.rowscan import NOT_JSON, row_findings, rows_run_by_run, share_of

runner = CliRunner()


def _write(path: Path, lines: list[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def test_every_line_goes_to_one_share_and_a_run_stays_in_one(tmp_path: Path) -> None:
    rows = [orjson.dumps({"n": i, "meta": {"run_id": f"r{i % 7}"}}) for i in range(40)]
    # a row naming another run_id after its meta (a tool schema's field): taken by that id's share, once
    rows[5] = orjson.dumps({"n": 5, "meta": {"run_id": "r5"}, "tools": [{"run_id": "elsewhere"}]})
    # a message whose text holds the key: escaped in JSON, so it does not count
    rows[6] = orjson.dumps({"n": 6, "messages": [{"content": '"run_id":"fake"'}], "meta": {"run_id": "r6"}})
    _write(tmp_path / "views/a.jsonl", rows[:25] + [b"{torn"])
    # the last line torn inside its run id, with no newline: still one share's
    (tmp_path / "views/a.jsonl").write_bytes((tmp_path / "views/a.jsonl").read_bytes() + b'{"meta":{"run_id":"r1')
    _write(tmp_path / "al/t.jsonl", [orjson.dumps({"n": 100 + i, "metadata": {"run_id": f"r{i % 7}"}})
                                     for i in range(15)] + [b"[1]"])
    paths = ["views/a.jsonl", "al/t.jsonl"]
    whole = sorted((p, line) for p, line, _ in rows_run_by_run(tmp_path, paths))
    assert len(whole) == 43
    for n in (2, 3, 5):
        got = [[(p, line, r) for p, line, r in rows_run_by_run(tmp_path, paths, share=(k, n))] for k in range(n)]
        assert sorted((p, line) for share in got for p, line, _ in share) == whole  # each line once, numbered as before
        owners: dict[str, set[int]] = {}
        for k, share in enumerate(got):
            for _, _, r in share:
                if r is not NOT_JSON and isinstance(r, dict) and r["n"] != 5:
                    owners.setdefault((r.get("meta") or r["metadata"])["run_id"], set()).add(k)
        assert all(len(ks) == 1 for ks in owners.values()), owners
    assert share_of(rows[6], 1 << 30) == share_of(b'"run_id":"r6"', 1 << 30)
    assert share_of(rows[5], 1 << 30) == share_of(b'"run_id":"elsewhere"', 1 << 30)
    assert share_of(b"{torn", 4) == share_of(b"", 4)
    assert share_of(b'{"meta":{"run_id":"r1', 1 << 30) == share_of(b'"run_id":"r1"', 1 << 30)


def test_pages_let_go_while_reading_change_no_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A mapped file's pages are let go every ``_WINDOW`` bytes (MADV_DONTNEED): lines still come whole."""
    from tracebridge.export import rowscan

    lines = [orjson.dumps({"n": i, "pad": "x" * (i * 997 % 9000), "meta": {"run_id": f"r{i // 3}"}}) for i in range(300)]
    _write(tmp_path / "views/a.jsonl", lines)
    want = [(line, r) for _, line, r in rows_run_by_run(tmp_path, ["views/a.jsonl"])]
    monkeypatch.setattr(rowscan, "_WINDOW", 1)  # after every line
    assert [(line, r) for _, line, r in rows_run_by_run(tmp_path, ["views/a.jsonl"])] == want
    assert [r["n"] for _, r in want] == list(range(300))


@pytest.fixture()
def planted(mixed_traces: Path, tmp_path: Path) -> Path:  # noqa: F811
    """A clean bundle of the mixed traces, then secrets written into rows of three files after the export."""
    bundle = export_traces(mixed_traces, tmp_path / "b").path
    files = sorted(p for p in bundle.rglob("*.jsonl") if p.name == "train.jsonl" and p.stat().st_size)[:3]
    assert len(files) == 3
    for i, path in enumerate(files):
        lines = path.read_bytes().splitlines(keepends=True)
        at = len(lines) // 2
        row = orjson.loads(lines[at])
        row["meta" if "meta" in row else "metadata"]["note"] = f"mail {PII['email']} key {i}"
        lines[at] = orjson.dumps(row) + b"\n"
        path.write_bytes(b"".join(lines))
    # stamped again, so the bundle verifies: only the row check stands between it and the storage
    man = orjson.loads((bundle / "manifest.json").read_bytes())
    for f in man["files"]:
        f["sha256"], f["bytes"] = sha256_file(bundle / f["path"]), (bundle / f["path"]).stat().st_size
    man["bundle_id"] = compute_bundle_id([f["sha256"] for f in man["files"]])
    (bundle / "manifest.json").write_bytes(orjson.dumps(man))
    return bundle


def test_workers_find_what_one_process_finds(planted: Path) -> None:
    man = verify_bundle(planted)
    total = sum(f.rows or 0 for f in man.files if f.path.endswith(".jsonl"))
    one = row_findings(planted, man, limit=50)
    assert len(one) == 3 and all(f.endswith(".note: EMAIL found") for f in one), one
    for workers in (2, 3):
        calls: list[tuple[int, int, str]] = []
        assert row_findings(planted, man, limit=50, workers=workers, progress=lambda *a, calls=calls: calls.append(a)) == one
        assert calls[-1] == (total, total, "rows checked")
        assert [d for d, _, _ in calls] == sorted(d for d, _, _ in calls)
    # at most ``limit``, in file and line order whatever the number of processes
    two = row_findings(planted, man, limit=2, workers=3)
    assert len(two) == 2 and two == sorted(two, key=lambda f: (one.index(f)))


def test_push_command_with_workers(planted: Path, mixed_traces: Path, tmp_path: Path) -> None:  # noqa: F811
    store = (tmp_path / "store").as_uri()
    res = runner.invoke(app, ["push", str(planted), store, "--workers", "2", "--json"])
    error = json.loads(res.stdout)["error"]
    assert res.exit_code == 1 and "refusing to push an unredacted bundle" in error and error.count("EMAIL found") == 3
    clean = export_traces(mixed_traces, tmp_path / "clean").path
    res = runner.invoke(app, ["push", str(clean), store, "--workers", "2", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["status"] == "published", res.output
    res = runner.invoke(app, ["push", str(clean), store, "--workers", "0"])
    assert res.exit_code == 2
