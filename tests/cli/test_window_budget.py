"""``tracebridge window``'s budget options are checked before a cluster is paid for: an hours cap of
NaN, infinity, 0 or less, or a dollar cap of NaN or below 0 exits 2 naming the option, and ``ray up``
never runs. Before, ``--max-hours nan`` gave a watchdog whose deadline was never reached (no comparison
with NaN is true), so the GPU cluster ran unbounded; ``--max-usd -5`` silently meant no dollar cap;
``--dry-run`` printed "cap nan h; at most $nan" and exited 0."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "tests" / "data" / "train_views"
RAY = f"""#!{sys.executable}
import os, sys
with open(os.environ["RAY_CALLS"], "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\\n")
"""


@pytest.fixture
def ray_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``ray`` on PATH that only records how it was called; the working folder is the checkout."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "ray").write_text(RAY)
    (bin_ / "ray").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("RAY_CALLS", str(tmp_path / "ray_calls.txt"))
    monkeypatch.chdir(ROOT)
    return tmp_path / "ray_calls.txt"


def _window(tmp: Path, *extra: str) -> list[str]:
    import yaml

    launcher = yaml.safe_load((ROOT / "infra" / "aws-gpu.yaml").read_text())
    launcher["file_mounts"] = {"~/.tracebridge/auth_token": str(tmp / "tok")}  # ships window.token_file
    (tmp / "aws-gpu.yaml").write_text(yaml.safe_dump(launcher))
    return ["window", "configs/sweep/smoke.yaml", f"bundle={BUNDLE}", f"storage={tmp}/storage", f"work_dir={tmp}/work",
            f"window.token_file={tmp}/tok", f"window.reports_dir={tmp}/reports", "--cluster", str(tmp / "aws-gpu.yaml"),
            *extra, "--json"]


@pytest.mark.parametrize("option, value", [("--max-hours", "nan"), ("--max-hours", "inf"), ("--max-hours", "0"),
                                           ("--max-hours", "-1"), ("--max-usd", "nan"), ("--max-usd", "-5")])
@pytest.mark.parametrize("dry_run", [True, False])
def test_a_budget_the_watchdog_cannot_enforce_exits_2_before_ray_up(ray_calls: Path, tmp_path: Path, option: str,
                                                                    value: str, dry_run: bool) -> None:
    res = CliRunner().invoke(app, _window(tmp_path, option, value, *(["--dry-run"] if dry_run else [])))
    assert res.exit_code == 2, res.output
    error = json.loads(res.stdout)["error"]
    assert f"{option} {value}: must be a finite number" in error, error
    assert not ray_calls.exists()  # nothing started, nothing to tear down
    assert not (tmp_path / "tok").exists()


def test_no_dollar_cap_and_a_positive_hours_cap_still_plan(ray_calls: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, _window(tmp_path, "--max-hours", "2", "--max-usd", "0", "--dry-run"))
    assert res.exit_code == 0, res.output
    plan = json.loads(res.stdout)["plan"]
    assert plan["cap_hours"] == 2 and plan["max_usd"] == 0 and plan["max_usd_estimate"] > 0
    assert not ray_calls.exists()
