"""The run cache of ``export_traces(cache_dir=...)`` / ``tracebridge export --cache``: unchanged runs
are reused, changed ones rebuilt, and the bundle is always the one an export without the cache writes."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import tracebridge.cli  # noqa: F401 - registers every command module
from tests.export.conftest import record_pii_run, record_sample_run
from tracebridge.cli.app import app
from tracebridge.curate.redact import capture_redactor
from tracebridge.export.config import ExportConfig
from tracebridge.export.pipeline import ExportResult, export_traces


def _entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("*/*.pkl"))


def _same(a: ExportResult, b: ExportResult) -> None:
    assert a.manifest.bundle_id == b.manifest.bundle_id and a.report == b.report


def test_unchanged_runs_are_reused_and_the_bundle_is_the_same(mixed_traces: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    plain = export_traces(mixed_traces, tmp_path / "plain")
    cold = export_traces(mixed_traces, tmp_path / "cold", cache_dir=cache)
    _same(cold, plain)  # quarantined, duplicate, redacted and clean runs alike
    assert cold.cache is not None and (cold.cache["misses"], cold.cache["written"], cold.cache["hits"]) == (5, 5, 0)
    assert len(_entries(cache)) == 5
    warm = export_traces(mixed_traces, tmp_path / "warm", cache_dir=cache, workers=2)
    _same(warm, plain)
    assert warm.cache is not None and (warm.cache["hits"], warm.cache["misses"]) == (5, 0)
    assert warm.summary()["cache"]["hits"] == 5 and "cache" not in plain.summary()

    # a new run is built; the others are reused unless the split of their family moved
    record_pii_run(mixed_traces, redactor=capture_redactor(), goal="mail Bob", text="ask bob@example.org")
    grown = export_traces(mixed_traces, tmp_path / "grown", cache_dir=cache)
    _same(grown, export_traces(mixed_traces, tmp_path / "grown_plain"))
    assert grown.cache is not None and grown.cache["misses"] >= 1 and grown.cache["hits"] + grown.cache["misses"] == 6

    # a changed run is rebuilt: its events differ, so does its key
    run = min(p for p in mixed_traces.iterdir() if p.is_dir())
    lines = (run / "events.jsonl").read_bytes().splitlines(keepends=True)
    (run / "events.jsonl").write_bytes(b"".join(lines[:-1]))
    edited = export_traces(mixed_traces, tmp_path / "edited", cache_dir=cache)
    _same(edited, export_traces(mixed_traces, tmp_path / "edited_plain"))
    assert edited.cache is not None and (edited.cache["hits"], edited.cache["misses"]) == (5, 1)


def test_labels_config_and_damaged_entries_rebuild(mixed_traces: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    liked: set[str] = set()

    def labels_for_run(run_id: str) -> dict | None:
        return {"run": {"feedback_score": 1.0, "feedback_label": "thumbs_up"}} if run_id in liked else None

    export_traces(mixed_traces, tmp_path / "a", cache_dir=cache, labels_for_run=labels_for_run)
    liked.add(min(p.name for p in mixed_traces.iterdir() if p.is_dir()))  # a reaction arrived
    b = export_traces(mixed_traces, tmp_path / "b", cache_dir=cache, labels_for_run=labels_for_run)
    assert b.cache is not None and (b.cache["hits"], b.cache["misses"]) == (4, 1)
    _same(b, export_traces(mixed_traces, tmp_path / "b_plain", labels_for_run=labels_for_run))

    # a torn or foreign entry is rebuilt and rewritten, never trusted
    first, second = _entries(cache)[:2]
    first.write_bytes(first.read_bytes()[:40])
    second.write_bytes(b"not a pickle")
    c = export_traces(mixed_traces, tmp_path / "c", cache_dir=cache, labels_for_run=labels_for_run)
    assert c.cache is not None and (c.cache["unreadable"], c.cache["misses"], c.cache["written"]) == (2, 2, 2)
    _same(c, b)

    # another config: every run is rebuilt, and the entries of the old one are pruned
    cfg = ExportConfig()
    cfg.views.include_reasoning = True
    d = export_traces(mixed_traces, tmp_path / "d", cfg, cache_dir=cache, labels_for_run=labels_for_run)
    assert d.cache is not None and (d.cache["hits"], d.cache["misses"], d.cache["pruned"]) == (0, 5, 5)
    assert len(_entries(cache)) == 5
    _same(d, export_traces(mixed_traces, tmp_path / "d_plain", cfg, labels_for_run=labels_for_run))

    # the tool schemas file the config names is read too: editing it rebuilds every run
    schemas = tmp_path / "tools.json"
    schemas.write_text("[]")
    cfg.tools.schemas_file = str(schemas)
    export_traces(mixed_traces, tmp_path / "e", cfg, cache_dir=cache, labels_for_run=labels_for_run)
    schemas.write_text('[{"type": "function", "function": {"name": "read_file", "parameters": {}}}]')
    f = export_traces(mixed_traces, tmp_path / "f", cfg, cache_dir=cache, labels_for_run=labels_for_run)
    assert f.cache is not None and (f.cache["hits"], f.cache["misses"]) == (0, 5)


def test_a_cache_filled_by_workers_gives_the_same_bundle(mixed_traces: Path, tmp_path: Path) -> None:
    # workers leave a run's rows in shared memory that the next runs reuse: the cache keeps a copy
    cache = tmp_path / "cache"
    plain = export_traces(mixed_traces, tmp_path / "plain")
    cold = export_traces(mixed_traces, tmp_path / "cold", cache_dir=cache, workers=2)
    assert cold.cache is not None and (cold.cache["misses"], cold.cache["written"]) == (5, 5)
    warm = export_traces(mixed_traces, tmp_path / "warm", cache_dir=cache)
    assert warm.cache is not None and (warm.cache["hits"], warm.cache["misses"]) == (5, 0)
    _same(cold, plain)
    _same(warm, plain)


def test_export_command_takes_a_cache(tmp_path: Path) -> None:
    root = tmp_path / "traces"
    for goal in ("sum column b of data.csv", "count words in words.txt"):
        record_sample_run(root, goal=goal)
    args = ["export", str(root), "--out", str(tmp_path / "b"), "--cache", str(tmp_path / "cache"), "--json"]
    runner = CliRunner()
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, args)
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert (a["cache"]["misses"], b["cache"]["hits"], b["cache"]["misses"]) == (2, 2, 0)
    assert a["bundle_id"] == b["bundle_id"]
    text = runner.invoke(app, args[:-1])
    assert text.exit_code == 0 and "cache: 2 runs reused, 0 built" in text.output
    (tmp_path / "a_file").write_text("x")
    bad = runner.invoke(app, [*args[:4], "--cache", str(tmp_path / "a_file" / "cache")])
    assert bad.exit_code == 2 and "export cache" in bad.output and "cannot create" in bad.output


def test_a_missing_file_made_unreadable_is_rebuilt(tmp_path: Path) -> None:
    """A missing session.json (an incomplete run) and one that cannot be read (a folder here; chmod 000
    for a user other than root) are different runs: the cache served the first one's reason."""
    root = tmp_path / "traces"
    run = root / record_sample_run(root)
    record_sample_run(root, goal="count lines in b.txt")
    (run / "session.json").unlink()
    cache = tmp_path / "cache"
    first = export_traces(root, tmp_path / "first", cache_dir=cache)
    assert first.report["quarantine"]["by_rule"] == {"incomplete_run": 1}
    (run / "session.json").mkdir()
    cached = export_traces(root, tmp_path / "cached", cache_dir=cache)
    _same(cached, export_traces(root, tmp_path / "plain"))
    assert cached.report["quarantine"]["by_rule"] == {"bad_json": 1}
    (run / "session.json").rmdir()
    (run / "events.jsonl").unlink()  # the events file too: missing, then unreadable
    export_traces(root, tmp_path / "gone", cache_dir=cache)
    (run / "events.jsonl").mkdir()
    _same(export_traces(root, tmp_path / "dir", cache_dir=cache), export_traces(root, tmp_path / "dir_plain"))
