"""Submit pre-flight, without a Ray head: a local bundle is hashed against its manifest and an
empty ``bundle=`` is named before any head starts (STYLE rule 6), a bundle whose storage does not
answer exits 3 (bounded by ``storage_io.*``); ``pull ''`` is a usage error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.export.test_storage_timeouts import aws_env, silent_endpoint  # noqa: F401  (fixtures)
from tracebridge.cli import app

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "tests" / "data" / "train_views"


@pytest.fixture
def no_head(monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting or connecting to a cluster fails the test: pre-flight must refuse first."""
    from tracebridge.cluster import submit

    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("a cluster was opened before the pre-flight checks refused the sweep")

    for name in ("start_head", "running_head", "connect"):
        monkeypatch.setattr(submit, name, refuse)
    monkeypatch.chdir(ROOT)


def run_submit(tmp: Path, *overrides: str) -> object:
    return CliRunner().invoke(app, ["submit", "configs/sweep/smoke.yaml", f"storage={tmp}/storage",
                                    f"work_dir={tmp}/work", *overrides])


def test_submit_hashes_a_local_bundle_before_any_head_starts(no_head: None, tmp_path: Path) -> None:
    from tracebridge.cluster.config import ClusterConfig
    from tracebridge.cluster.submit import plan_sweep

    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLE, bundle)
    plan = plan_sweep(Path("configs/sweep/smoke.yaml"), [f"bundle={bundle}"], ClusterConfig(), ROOT)
    assert plan.bundle_id == json.loads((BUNDLE / "manifest.json").read_text())["bundle_id"]
    data = bytearray((bundle / "verifier_sft.jsonl").read_bytes())
    data[10] = ord("X") if data[10] != ord("X") else ord("Y")  # same size: only the sha256 can tell
    (bundle / "verifier_sft.jsonl").write_bytes(bytes(data))
    res = run_submit(tmp_path, f"bundle={bundle}")
    assert res.exit_code == 2, res.output
    assert "verifier_sft.jsonl does not match its manifest sha256" in res.stderr, res.stderr
    assert not (tmp_path / "storage").exists() and not (tmp_path / "work").exists()


def test_submit_with_an_empty_bundle_names_the_key_and_an_example(no_head: None, tmp_path: Path) -> None:
    for empty in ("bundle=", "bundle= "):
        res = run_submit(tmp_path, empty)
        assert res.exit_code == 2, res.output
        assert "bundle='': set the export bundle, e.g. bundle=" in res.stderr, res.stderr
        assert "Incompatible value" not in res.stderr


def test_pull_of_an_empty_source_is_a_usage_error(no_head: None, tmp_path: Path) -> None:
    for empty in ("", "  "):
        res = CliRunner().invoke(app, ["pull", empty, "--out", str(tmp_path / "reports")])
        assert res.exit_code == 2, res.output
        assert "give a submission id (see `tracebridge list`) or a report URI" in res.stderr, res.stderr
        assert "no local Ray head" not in res.output
    assert not (tmp_path / "reports").exists()


def test_submit_whose_bundle_storage_does_not_answer_exits_3_before_any_head(
        no_head: None, silent_endpoint: str, aws_env: None, tmp_path: Path) -> None:  # noqa: F811 - fixtures
    res = run_submit(tmp_path, "bundle=s3://tb/bundles", f"storage_io.s3_endpoint_url={silent_endpoint}",
                     "storage_io.request_timeout_s=0.3", "storage_io.retry.attempts=2", "storage_io.retry.backoff_s=0",
                     "--json")
    assert res.exit_code == 3, res.output
    doc = json.loads(res.stdout)
    assert doc["exit_code"] == 3
    assert doc["error"].startswith("bundle: look-up of s3://tb/bundles/manifest.json failed after 2 attempt(s): "
                                   "ReadTimeoutError")
    res = run_submit(tmp_path, "bundle=s3://tb/bundles", f"storage_io.s3_endpoint_url={silent_endpoint}",
                     "storage_io.request_timeout_s=0.3", "storage_io.retry.attempts=1", "budget.max_trials=1")
    assert res.exit_code == 2, res.output  # a grid to fix too: listed with the unreachable bundle, exit 2
    assert "budget.max_trials=1: the grid would train" in res.stderr and "bundle=s3://tb/bundles: look-up of" in res.stderr
    assert "after 1 attempt(s)" in res.stderr


def test_submit_with_a_storage_the_job_cannot_write_exits_2_before_any_head(no_head: None, tmp_path: Path) -> None:
    """The job probes its storage first thing and exits 2; on a local head the same probe runs here, so a
    mistyped protocol or a path through a file is named before a head starts (it was exit 1 after one ran)."""
    (tmp_path / "afile").write_text("")
    for storage, said in ((f"{tmp_path}/afile/runs", f"{tmp_path / 'afile'} is a file, not a folder"),
                          ("foo://bucket/runs", "storage=foo://bucket/runs: unknown protocol 'foo://'")):
        res = CliRunner().invoke(app, ["submit", "configs/sweep/smoke.yaml", f"bundle={BUNDLE}", f"storage={storage}",
                                       f"work_dir={tmp_path}/work", "--json"])
        assert res.exit_code == 2, res.output
        assert said in json.loads(res.stdout)["error"], res.stdout
    assert not (tmp_path / "work").exists()


def test_submit_whose_sweep_storage_does_not_answer_exits_3_before_any_head(
        no_head: None, silent_endpoint: str, aws_env: None, tmp_path: Path) -> None:  # noqa: F811
    res = run_submit(tmp_path, f"bundle={BUNDLE}", "storage=s3://tb/runs", f"storage_io.s3_endpoint_url={silent_endpoint}",
                     "storage_io.request_timeout_s=0.3", "push.attempts=1", "--json")
    assert res.exit_code == 3, res.output
    assert json.loads(res.stdout)["error"].startswith("storage=s3://tb/runs: cannot write there"), res.stdout


def test_a_remote_cluster_probes_no_storage_but_refuses_an_unknown_protocol(tmp_path: Path) -> None:
    """A remote cluster may hold credentials or folders this host lacks: only a protocol no one knows is refused."""
    from tracebridge.cluster.config import ClusterConfig
    from tracebridge.cluster.submit import plan_sweep
    from tracebridge.config import ConfigError

    remote = ClusterConfig(kind="remote", address="http://127.0.0.1:1")
    (tmp_path / "afile").write_text("")
    plan = plan_sweep(ROOT / "configs/sweep/smoke.yaml", [f"bundle={BUNDLE}", f"storage={tmp_path}/afile/runs"],
                      remote, ROOT)
    assert plan.report_uri.startswith(f"{tmp_path}/afile/runs/reports/")
    with pytest.raises(ConfigError, match="unknown protocol 'foo://'"):
        plan_sweep(ROOT / "configs/sweep/smoke.yaml", [f"bundle={BUNDLE}", "storage=foo://b/runs"], remote, ROOT)


def test_submit_and_pull_refuse_an_out_that_is_a_file_before_any_work(no_head: None, tmp_path: Path) -> None:
    """The report is pulled into --out after the sweep: a file there was found only then (pull: exit 1)."""
    (tmp_path / "afile").write_text("")
    for args in (["submit", "configs/sweep/smoke.yaml", f"bundle={BUNDLE}", f"storage={tmp_path}/storage"],
                 ["pull", str(tmp_path / "storage" / "reports" / "x")]):
        res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "afile"), "--json"])
        assert res.exit_code == 2, res.output
        assert json.loads(res.stdout)["error"] == f"--out {tmp_path / 'afile'}: {tmp_path / 'afile'} is a file, not a folder"
    assert not (tmp_path / "storage").exists()


def test_an_ablation_or_override_of_a_grid_key_is_refused_before_any_head(no_head: None, tmp_path: Path) -> None:
    """role, variant and seed are set per trial by the grid (roles, variants, seeds). Before, an ablation
    over one was checked and named as the cell's value but trained as the ablation's (``ablations.role=[worker]``
    in a verifier sweep trained worker trials named ``verifier-…``, and the manifest recorded no ablation), and
    an override of one was dropped without a word."""
    res = CliRunner().invoke(app, ["submit", "configs/sweep/smoke.yaml", f"bundle={BUNDLE}", f"storage={tmp_path}/s",
                                   f"work_dir={tmp_path}/w", "ablations.role=[worker]", "overrides.seed=3",
                                   "variant_overrides.optimized.variant=baseline", "--json"])
    assert res.exit_code == 2, res.output
    err = json.loads(res.stdout)["error"]
    assert "invalid config configs/sweep/smoke.yaml (3 problem(s))" in err, err
    assert "ablations.role: each trial's role is its grid cell's, from roles; set roles=[...] instead" in err
    assert "overrides.seed: each trial's seed is its grid cell's, from seeds; set seeds=[...]" in err
    assert "variant_overrides.optimized.variant: each trial's variant is its grid cell's, from variants" in err
    assert not (tmp_path / "s").exists() and not (tmp_path / "w").exists()
