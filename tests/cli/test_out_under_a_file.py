"""An ``--out`` folder that cannot be made because a folder above it is a file exits 2 naming that
file, before any work, in ``collect`` and ``report`` as in the other commands (``check_out_dir``).
Before, they checked only the folder itself: ``collect --out README.md/traces`` ran its episodes and
ended in a NotADirectoryError traceback (exit 1), and ``report --out trial.json/rep`` in one too."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tests.report.test_report_injection import trial_dir
from tracebridge.cli import app

ROOT = Path(__file__).resolve().parents[2]
SMALL = [str(ROOT / "configs/collect/smoke.yaml"), "workers=1", "families=[calc]", "seeds.fixed=[0]"]


def test_collect_into_a_folder_under_a_file_exits_2_before_any_episode(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x\n")
    res = CliRunner().invoke(app, ["collect", *SMALL, "--out", str(tmp_path / "notes.txt" / "traces"), "--json"])
    assert res.exit_code == 2, res.output
    assert f"{tmp_path / 'notes.txt'} is a file, not a folder" in res.stderr
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_report_into_a_folder_under_a_file_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    trial = trial_dir(tmp_path, "ok")
    res = CliRunner().invoke(app, ["report", str(trial), "--out", str(trial / "trial.json" / "rep")])
    assert res.exit_code == 2, res.output
    assert f"{trial / 'trial.json'} is a file, not a folder" in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert sorted(p.name for p in trial.iterdir()) == ["eval_items.json", "trial.json"]


def test_feedback_audit_names_the_option_and_the_file_in_the_way(tmp_path: Path) -> None:
    """Before: exit 2 with only ``[Errno 17] File exists: 'notes.txt'`` (``--out``) or ``[Errno 20] Not a
    directory`` (a folder under it), naming neither the option nor that the path is a file."""
    (tmp_path / "notes.txt").write_text("x\n")
    memory = [f"ledger={tmp_path}/l.jsonl", f"harvest_log={tmp_path}/log.jsonl", f"registry={tmp_path}/r.jsonl"]
    for args, says in (([f"--out={tmp_path / 'notes.txt'}"], f"--out {tmp_path / 'notes.txt'}: "),
                       ([f"--out={tmp_path / 'notes.txt' / 'audit'}"], f"--out {tmp_path / 'notes.txt' / 'audit'}: "),
                       ([f"audit_dir={tmp_path / 'notes.txt'}"], f"audit_dir {tmp_path / 'notes.txt'}: ")):
        res = CliRunner().invoke(app, ["feedback", "audit", "--day", "2026-01-01", *memory, *args])
        assert res.exit_code == 2, res.output
        assert f"{says}{tmp_path / 'notes.txt'} is a file, not a folder" in res.stderr, res.stderr


def test_phase2_report_into_an_out_dir_that_is_a_file_exits_2_before_any_trial(tmp_path: Path) -> None:
    """Before: the bundle was verified, then a FileExistsError (NotADirectoryError under it) traceback, exit 1."""
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(ROOT / "tests/data/train_views", bundle)
    (tmp_path / "notes.txt").write_text("x\n")
    for out in (tmp_path / "notes.txt", tmp_path / "notes.txt" / "phase2"):
        res = CliRunner().invoke(app, ["ops", "phase2-report", "agree_with=[]", f"phase2.out_dir={out}",
                                       "phase2.role=verifier", "--bundle", str(bundle), "--json"])
        assert res.exit_code == 2, res.output
        assert f"phase2.out_dir {out}: {tmp_path / 'notes.txt'} is a file, not a folder" in res.stderr
        assert res.exception is None or isinstance(res.exception, SystemExit)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "notes.txt"]


def test_smoke_runtime_hook_into_a_file_exits_2_before_the_agent_runs(tmp_path: Path) -> None:
    """Before: the smoke ran its agent (seconds, Agent Lightning loaded), the hook failed open writing
    under the file, and the command exited 1, a failed smoke, for a usage error."""
    (tmp_path / "notes.txt").write_text("x\n")
    for out in (tmp_path / "notes.txt", tmp_path / "notes.txt" / "traces"):
        res = CliRunner().invoke(app, ["smoke", "runtime-hook", "--out", str(out), "--json"])
        assert res.exit_code == 2, res.output
        assert f"{tmp_path / 'notes.txt'} is a file, not a folder" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
