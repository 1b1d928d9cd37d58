"""``import openclaw --workers N`` SIGKILLed mid-import: its workers end with it. Before, they went on
importing (writing runs beside the import run again after the kill) and then stayed for good, asleep
writing their results to a pipe nobody read."""

from __future__ import annotations

from tests.importers.test_openclaw_parallel import all_bytes, make_sources
from tracebridge.importers.openclaw import import_openclaw
from tracebridge.testing.procs import cli, kill_once_workers_run, wait_gone


def test_workers_of_a_killed_import_end_with_it_and_the_rerun_equals_one_import(tmp_path):
    src = make_sources(tmp_path / "src", 150)
    out = tmp_path / "traces"
    p = cli("import", "openclaw", str(src), "--out", str(out), "--workers", "2", "--json")
    workers = kill_once_workers_run(p, 2, "import")
    assert not wait_gone(workers), "workers outlived the killed import"
    rep = import_openclaw([src], out, workers=2)
    one = tmp_path / "one"
    ref = import_openclaw([src], one)
    assert rep.reconciles and rep.files_skipped == ref.files_skipped, (
        rep.skipped
    )  # the fixture's .bak is skipped
    runs = {k: v for k, v in all_bytes(out).items() if not k.startswith(".import")}
    assert runs == {k: v for k, v in all_bytes(one).items() if not k.startswith(".import")}
