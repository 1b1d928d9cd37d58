"""infra/: cluster launcher YAMLs validate against the schema Ray ships; GPU worker types start
from 0 with an idle timeout and have prices; token auth everywhere; the KubeRay RayJob tears
itself down."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml

from tracebridge.cluster.config import DEFAULT_ENV, DEFAULT_PRICES
from tracebridge.cluster.window import node_rows

ROOT = Path(__file__).resolve().parents[2]
LAUNCHERS = [ROOT / "infra" / "aws-gpu.yaml", ROOT / "infra" / "gcp-gpu.yaml"]


@pytest.fixture(scope="module")
def ray_schema():
    return json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())


@pytest.mark.parametrize("path", LAUNCHERS, ids=lambda p: p.name)
def test_launcher_validates_against_rays_schema(path, ray_schema):
    cfg = yaml.safe_load(path.read_text())
    jsonschema.validate(cfg, ray_schema)
    broken = {**cfg, "available_node_types": {**cfg["available_node_types"], "bad": {"node_config": {}}}}
    with pytest.raises(jsonschema.ValidationError):  # the schema is really checked (resources missing)
        jsonschema.validate(broken, ray_schema)


@pytest.mark.parametrize("path", LAUNCHERS, ids=lambda p: p.name)
def test_launcher_gpu_workers_scale_from_zero_with_token_auth(path):
    cfg = yaml.safe_load(path.read_text())
    assert cfg["idle_timeout_minutes"] > 0 and "tracebridge" in cfg["docker"]["image"]
    head = cfg["head_node_type"]
    gpu = {k: v for k, v in cfg["available_node_types"].items() if v["resources"].get("GPU")}
    assert len(gpu) >= 3 and all(v["min_workers"] == 0 and v["max_workers"] >= 1 for v in gpu.values())
    assert cfg["available_node_types"][head]["resources"].get("GPU", 0) == 0
    rows, unpriced = node_rows(cfg, DEFAULT_PRICES)
    assert unpriced == [] and all(r["usd_per_hour"] > 0 for r in rows)
    for cmds in (cfg["head_start_ray_commands"], cfg["worker_start_ray_commands"]):
        assert any("RAY_AUTH_MODE=token" in c and "RAY_AUTH_TOKEN_PATH" in c for c in cmds)
    assert any("--dashboard-host=127.0.0.1" in c for c in cfg["head_start_ray_commands"])
    assert "~/.tracebridge/auth_token" in cfg["file_mounts"]


def test_kuberay_rayjob_tears_down_and_uses_token_auth():
    job = yaml.safe_load((ROOT / "infra" / "kuberay" / "rayjob.yaml").read_text())
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    spec = job["spec"]
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] > 0
    assert spec["entrypoint"].split()[:2] == ["python", "jobs/sweep.py"]
    cluster = spec["rayClusterSpec"]
    assert cluster["authOptions"]["mode"] == "token" and cluster["rayVersion"] == ray.__version__
    workers = cluster["workerGroupSpecs"]
    assert any(w["minReplicas"] == 0 and "nvidia.com/gpu" in w["template"]["spec"]["containers"][0]["resources"]["limits"]
               for w in workers)
    assert "token" not in json.dumps(spec["runtimeEnvYAML"]).lower().replace("tokenizers", "")


def test_kuberay_rayjob_sets_the_job_environment_submit_sets():
    """A sweep run by the RayJob gets the environment `tracebridge submit` gives its jobs: without
    RAY_JOB_STOP_WAIT_TIME_S / TUNE_GLOBAL_CHECKPOINT_S a stopped job could lose the state a resubmitted
    attempt resumes from, and without HF_HUB_OFFLINE a job would try the hub."""
    job = yaml.safe_load((ROOT / "infra" / "kuberay" / "rayjob.yaml").read_text())
    env = yaml.safe_load(job["spec"]["runtimeEnvYAML"])["env_vars"]
    assert env == DEFAULT_ENV


def _image_paths(dockerfile: Path) -> tuple[str, list[str]]:
    """The Dockerfile's WORKDIR and the paths, relative to it, its COPY lines fill."""
    workdir, copied = "/", []
    for line in dockerfile.read_text().splitlines():
        words = [w for w in line.split() if not w.startswith("--")]  # --chown=...
        if words[:1] == ["WORKDIR"]:
            workdir = words[1]
        elif words[:1] == ["COPY"]:
            *sources, dest = words[1:]
            copied += [s.rstrip("/") for s in sources] if dest in ("./", ".") else [dest.removeprefix("./").rstrip("/")]
    return workdir, copied


def test_the_rayjob_entrypoint_finds_its_script_and_configs_in_the_image():
    """The RayJob has no runtime_env working_dir: its entrypoint runs in the head container's workingDir,
    from the image. Before, the image held only the package (no jobs/, no configs/), so the job could not start
    (`can't open file 'jobs/sweep.py'`)."""
    from tracebridge.sweep.config import load_sweep_config

    job = yaml.safe_load((ROOT / "infra" / "kuberay" / "rayjob.yaml").read_text())
    workdir, copied = _image_paths(ROOT / "infra" / "docker" / "Dockerfile")
    cluster = job["spec"]["rayClusterSpec"]
    (head,) = cluster["headGroupSpec"]["template"]["spec"]["containers"]
    assert head["workingDir"] == workdir
    images = {c["image"] for g in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
              for c in g["template"]["spec"]["containers"]}
    assert images == {yaml.safe_load((ROOT / "infra" / "aws-gpu.yaml").read_text())["docker"]["image"]}
    words = job["spec"]["entrypoint"].split()
    script, sweep = words[1], words[2]
    cfg = load_sweep_config(str(ROOT / sweep), [w for w in words[3:] if "=" in w])
    needed = [script, sweep, *(p for p in (cfg.train_config, cfg.model_config) if p)]
    for path in needed:
        assert (ROOT / path).is_file(), path
        assert any(path == c or path.startswith(c + "/") for c in copied), f"{path} is not in the image: {copied}"


def test_the_rayjob_sweep_records_the_rayjob_as_its_cluster():
    """The RayJob's sweep ran on the KubeRay cluster, but its entrypoint passed no ``cluster=``, so its report
    manifest's ``config.sweep.cluster`` said the sweep YAML's ``cluster: local``. It now names the RayJob's own
    file, as ``window --cluster L`` records its launcher YAML (``cluster_override``: relative to the repository)."""
    from tracebridge.sweep.config import cluster_override, load_sweep_config

    path = ROOT / "infra" / "kuberay" / "rayjob.yaml"
    words = yaml.safe_load(path.read_text())["spec"]["entrypoint"].split()
    cfg = load_sweep_config(str(ROOT / words[2]), [w for w in words[3:] if "=" in w])
    assert cfg.cluster == "infra/kuberay/rayjob.yaml"
    assert f"cluster={cfg.cluster}" == cluster_override(str(path), ROOT)
