"""Where a trial ran: its node (host name, and the Ray node id and IP under Ray), the GPUs it was
given and their type. Under Ray the GPUs are what Ray assigned to the trial's worker (fractions
included); outside Ray, the CUDA devices visible to the process (0 on CPU). Ray and torch are only
asked when the process has already imported them, so a plain CPU trial pays no import for this.

The report manifest sums ``gpus × wall_s`` of these records into GPU-hours
(``tracebridge.report.cost``), which is why they come from the trial and not from the driver.
"""

from __future__ import annotations

import re
import socket
import sys
from typing import Any

# Short names of the GPU types, as Ray's ``ray.io/accelerator-type`` label spells them; longer
# names first only where one contains another as a word ("A10" vs "A100" never matches: whole words).
GPU_TYPES = ("GB200", "B200", "H200", "H100", "A100", "A10G", "A10", "L40S", "L4", "T4", "V100", "A6000")


def gpu_type_of(name: str | None) -> str | None:
    """The short GPU type of a device or accelerator name.

    Args:
        name: e.g. ``"NVIDIA H100 80GB HBM3"``, ``"NVIDIA A100-SXM4-40GB"`` or Ray's ``"A10G"``.

    Returns:
        ``"H100"``, ``"A100"``, ``"A10G"``..., the name without its vendor prefix when it is no
        known type, or None for no name.
    """
    if not name:
        return None
    upper = name.upper()
    for t in GPU_TYPES:
        if re.search(rf"(?<![A-Z0-9]){t}(?![A-Z0-9])", upper):
            return t
    return name.removeprefix("NVIDIA ").strip() or None


def _cuda() -> tuple[int, str | None]:
    """Visible CUDA devices and the first one's name, when torch is loaded."""
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available():
            return torch.cuda.device_count(), torch.cuda.get_device_name(0)
    except (RuntimeError, AssertionError):  # a broken driver counts as no GPU
        pass
    return 0, None


def _ray_worker() -> dict[str, Any] | None:
    """What Ray says about this worker (None outside a Ray worker process, e.g. on a driver)."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    ctx = ray.get_runtime_context()
    if ctx.worker.mode != ray.WORKER_MODE:
        return None
    labels = ctx.get_node_labels() or {}
    return {"node_id": ctx.get_node_id(), "node_ip": ray.util.get_node_ip_address(),
            "gpus": float(ctx.get_assigned_resources().get("GPU", 0.0)),
            "gpu_type": gpu_type_of(labels.get("ray.io/accelerator-type")), "source": "ray"}


def trial_placement() -> dict[str, Any]:
    """Where this trial runs, for ``trial.json``'s ``resources`` key.

    Returns:
        ``{"node": host name, "node_id", "node_ip" (Ray, else None), "gpus": GPUs given to the
        trial (Ray's assignment, else visible CUDA devices; 0 on CPU), "gpu_type": short type or
        None, "workers": 1, "source": "ray" | "process"}``. For a Ray Train trial,
        ``tracebridge.sweep.trainable.run_one`` scales ``gpus`` and ``workers`` of the returned
        result by the world size (its ``trial.json`` keeps rank 0's own share).
    """
    out: dict[str, Any] = {"node": socket.gethostname(), "node_id": None, "node_ip": None, "gpus": 0.0,
                           "gpu_type": None, "workers": 1, "source": "process"}
    count, name = _cuda()
    ray_info = _ray_worker()
    if ray_info is not None:
        out.update(ray_info)
    else:
        out["gpus"] = float(count)
    if out["gpus"] and not out["gpu_type"]:
        out["gpu_type"] = gpu_type_of(name)
    return out
