"""Cluster configs: every YAML under configs/cluster and configs/sweep loads and validates;
secrets are refused as values; the cluster spec forms resolve."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracebridge.cluster.client import entrypoint, read_token, runtime_env
from tracebridge.cluster.config import ClusterConfig, cluster_from_spec
from tracebridge.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "cluster").glob("*.yaml")), ids=lambda p: p.name)
def test_cluster_yamls_load(path):
    cfg = load_config(ClusterConfig, path)
    assert cfg.kind in ("local", "remote") and cfg.token_env
    assert path.read_text().startswith("#")  # a header comment says how to use it


def test_cluster_spec_forms():
    assert cluster_from_spec("local").kind == "local"
    remote = cluster_from_spec("http://127.0.0.1:8265")
    assert remote.kind == "remote" and remote.address == "http://127.0.0.1:8265"
    assert cluster_from_spec(str(ROOT / "configs" / "cluster" / "remote.yaml")).token_env == "RAY_CLUSTER_TOKEN"
    with pytest.raises(ConfigError, match="dashboard URL"):
        cluster_from_spec("my-cluster")


def test_secrets_are_names_not_values():
    with pytest.raises(ConfigError) as exc:
        load_config(ClusterConfig, None, ["kind=remote", "address=ftp://x", "token_env=abc-123.456",
                                          "env_vars.AWS_SECRET_ACCESS_KEY=shh"])
    text = str(exc.value)
    assert "address=" in text and "token_env=" in text and "env_vars.AWS_SECRET_ACCESS_KEY" in text


def test_token_is_read_from_the_named_variable_only(monkeypatch, tmp_path):
    cfg = ClusterConfig(kind="remote", address="http://127.0.0.1:1", token_env="MY_RAY_TOKEN")
    monkeypatch.delenv("MY_RAY_TOKEN", raising=False)
    assert read_token(cfg) is None
    monkeypatch.setenv("MY_RAY_TOKEN", "t0k")
    assert read_token(cfg) == "t0k"
    (tmp_path / "tok").write_text("f1le\n")
    assert read_token(ClusterConfig(token_file=str(tmp_path / "tok"))) == "f1le"


def test_runtime_env_and_entrypoint(tmp_path):
    local = ClusterConfig()
    env = runtime_env(local, tmp_path)
    assert env["working_dir"] == str(tmp_path) and ".venv" in env["excludes"]
    assert env["env_vars"]["OMP_NUM_THREADS"] == "1" and env["env_vars"]["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert env["env_vars"]["RAY_JOB_STOP_SIGNAL"] == "SIGINT"
    import sys

    assert entrypoint(local, "jobs/sweep.py", ["c.yaml", "seeds=[0, 1]"]).startswith(sys.executable)
    assert entrypoint(local, "jobs/sweep.py", ["seeds=[0, 1]"]).endswith("'seeds=[0, 1]'")
    remote = ClusterConfig(kind="remote", address="http://x:1", image="img:1", pip=["foo"])
    env = runtime_env(remote, tmp_path)
    assert env["image_uri"] == "img:1" and env["pip"] == ["foo"]
    assert entrypoint(remote, "jobs/sweep.py", []).startswith("python jobs/sweep.py")


def test_job_upload_leaves_out_raw_and_personal_data(tmp_path):
    """DESIGN: the cluster never sees raw traces. Ray's own packaging of a checkout with the job's
    excludes (and no .gitignore to help) holds the code and configs, and no trace file, reaction
    ledger, human correction, shadow-cycle work dir or policy state."""
    import zipfile

    from ray._private.runtime_env.packaging import create_package

    files = {
        "tracebridge/ops/state.py": "x = 1\n", "jobs/sweep.py": "print()\n", "configs/sweep/a.yaml": "a: 1\n",
        "memory/feedback/telegram-reactions.jsonl": '{"user": "alice"}\n',
        "memory/corrections/corrections.jsonl": '{"reviewer": "bob"}\n',
        "shadow/bundles/x/manifest.json": "{}\n", "state/policy/active.json": "{}\n",
        "my_agent/runs_2026/r1/events.jsonl": '{"payload": "raw"}\n', "my_agent/runs_2026/r1/session.json": "{}\n",
        "traces/r2/events.jsonl": "{}\n", ".venv/lib/x.py": "", "bundles/b/manifest.json": "{}\n",
    }
    for rel, text in files.items():
        (tmp_path / "co" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "co" / rel).write_text(text)
    env = runtime_env(ClusterConfig(), tmp_path / "co")
    pkg = tmp_path / "pkg.zip"
    create_package(env["working_dir"], pkg, include_gitignore=True, excludes=env["excludes"])
    names = {n for n in zipfile.ZipFile(pkg).namelist() if not n.endswith("/")}
    assert {"tracebridge/ops/state.py", "jobs/sweep.py", "configs/sweep/a.yaml"} <= names
    leaked = [n for n in names if n.split("/")[0] in ("memory", "shadow", "state", "traces", ".venv", "bundles")
              or n.endswith(("events.jsonl", "session.json"))]
    assert not leaked, leaked


def test_out_of_range_cluster_and_window_values_are_each_named():
    """A negative GPU count, driver reservation or window timeout, or port 0 for the forwarded Jobs API,
    were accepted and failed later inside Ray or the window (or gave up at once)."""
    with pytest.raises(ConfigError) as e:
        load_config(ClusterConfig, ROOT / "configs/cluster/local.yaml",
                    ["num_gpus=-2", "entrypoint_num_cpus=-1", "entrypoint_num_gpus=-0.5"])
    assert e.value.problems == ["num_gpus=-2: must be >= 0, or -1 to detect", "entrypoint_num_cpus=-1.0: must be >= 0",
                                "entrypoint_num_gpus=-0.5: must be >= 0"]
    from tracebridge.sweep.config import load_sweep_config

    with pytest.raises(ConfigError) as e:
        load_sweep_config(str(ROOT / "configs/sweep/smoke.yaml"),
                          ["bundle=s3://b/x", "window.up_timeout_s=0", "window.connect_timeout_s=-5",
                           "window.dashboard_port=0"])
    assert e.value.problems == ["window.up_timeout_s=0.0: must be > 0 seconds",
                                "window.connect_timeout_s=-5.0: must be > 0 seconds",
                                "window.dashboard_port=0: use a port in 1..65535 (default 8265)"]


def test_submit_wait_polls_at_the_clusters_wait_poll_s(tmp_path):
    """`submit --wait` polled the job every 2 s, fixed; the cluster's ``wait_poll_s`` sets it (the test head
    polls every 0.2 s), 2 s by default, and a value that is not > 0 is named."""
    assert cluster_from_spec("local").wait_poll_s == 2.0
    y = tmp_path / "c.yaml"
    y.write_text("kind: local\nwait_poll_s: 0.2\n")
    assert cluster_from_spec(str(y)).wait_poll_s == 0.2
    assert cluster_from_spec(str(y), ["wait_poll_s=5"]).wait_poll_s == 5.0  # --cluster-set
    with pytest.raises(ConfigError) as e:
        cluster_from_spec("local", ["wait_poll_s=0"])
    assert e.value.problems == ["wait_poll_s=0.0: must be > 0 seconds (e.g. 2)"]
