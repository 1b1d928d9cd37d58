"""Where a trial ran: outside Ray, this host with the CUDA devices the process sees (none here);
inside a Ray worker, the GPUs Ray assigned to it (whole or fractional) on its node. The Ray case
runs a real local Ray (token auth, in a subprocess) that advertises two GPUs on this CPU machine,
so the assignment is Ray's own while no CUDA device exists."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tracebridge.train.placement import gpu_type_of, trial_placement

ROOT = Path(__file__).resolve().parents[2]

RAY_SCRIPT = """
import json, sys
import ray
from tracebridge.train.placement import trial_placement

ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)

@ray.remote
def where():
    return trial_placement()

out = {"driver": trial_placement(), "node_id": ray.get_runtime_context().get_node_id(),
       "one": ray.get(where.options(num_cpus=1, num_gpus=1).remote()),
       "half": ray.get(where.options(num_cpus=1, num_gpus=0.5).remote()),
       "cpu": ray.get(where.options(num_cpus=1).remote())}
ray.shutdown()
print(json.dumps(out))
"""


@pytest.mark.parametrize(("name", "short"), [
    ("NVIDIA H100 80GB HBM3", "H100"), ("NVIDIA A100-SXM4-40GB", "A100"), ("NVIDIA A10G", "A10G"),
    ("NVIDIA A10", "A10"), ("NVIDIA L4", "L4"), ("NVIDIA L40S", "L40S"), ("H200", "H200"),
    ("Tesla T4", "T4"), ("NVIDIA RTX 4090", "RTX 4090"), (None, None), ("", None)])
def test_gpu_type_of_device_names(name, short):
    assert gpu_type_of(name) == short


def test_outside_ray_the_process_is_the_trial():
    import torch  # a trial has torch loaded; this machine has no CUDA device

    assert not torch.cuda.is_available()
    assert trial_placement() == {"node": socket.gethostname(), "node_id": None, "node_ip": None, "gpus": 0.0,
                                 "gpu_type": None, "workers": 1, "source": "process"}


def test_inside_ray_the_gpus_are_the_ones_ray_assigned(tmp_path):
    from tracebridge.cluster.head import ensure_token

    ensure_token(tmp_path / "token")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(tmp_path / "token"), OMP_NUM_THREADS="1",
               PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-c", RAY_SCRIPT], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=180, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["driver"]["source"] == "process"  # the driver is not a trial: Ray assigned it nothing
    for key, gpus in (("one", 1.0), ("half", 0.5), ("cpu", 0.0)):
        p = out[key]
        assert p["source"] == "ray" and p["gpus"] == gpus, (key, p)
        assert p["node"] == socket.gethostname() and p["node_id"] == out["node_id"] and p["node_ip"]
        assert p["gpu_type"] is None  # no accelerator label and no CUDA device behind Ray's GPUs here
