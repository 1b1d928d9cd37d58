"""Typed configs of cluster access (YAML under ``configs/cluster/``) and of GPU windows (the
``window`` block of a sweep config).

A sweep names its cluster with ``cluster: local`` (the default: an embedded Ray head on
127.0.0.1 with token auth), a ``configs/cluster/*.yaml`` path, or a dashboard address
(``http://127.0.0.1:8265``, e.g. forwarded by ``ray dashboard infra/aws-gpu.yaml``). Secrets are
never values here: ``token_env`` names the environment variable that holds the Ray token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLUSTER_KINDS = ("local", "remote")
# Left out of the job's working_dir upload: build and cache folders, outputs, and everything that may
# hold raw or personal data, so the cluster sees only redacted bundles (DESIGN): trace roots and raw
# trace files wherever they lie, the reaction ledger and human corrections (memory/), the shadow
# cycle's work dir and the policy state.
DEFAULT_EXCLUDES = [".venv", ".git", ".whl", ".hypothesis", ".pytest_cache", ".ruff_cache", "__pycache__",
                    "*.egg-info", "demo_out", "runs", "storage", "reports", "traces", "bundles", "artifacts",
                    "node_modules", "memory", "shadow", "state", "events.jsonl", "session.json"]
# Base job environment: one torch thread per CPU (2 threads on 2 shared cores is ~30x slower for tiny
# models), litellm's offline cost map (agentlightning imports it), Tune gets SIGINT on `stop` so it
# saves its experiment state, and a prompt experiment checkpoint so an interrupted sweep resumes.
DEFAULT_ENV = {"OMP_NUM_THREADS": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True", "TOKENIZERS_PARALLELISM": "false",
               "RAY_JOB_STOP_SIGNAL": "SIGINT", "RAY_JOB_STOP_WAIT_TIME_S": "30", "TUNE_GLOBAL_CHECKPOINT_S": "2",
               "RAY_CHDIR_TO_TRIAL_DIR": "0",
               "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
               "HF_HUB_OFFLINE": "1", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}
# USD per hour on demand (us-east-1 / us-central1, 2025 list prices); override per sweep in window.prices.
DEFAULT_PRICES = {
    "m5.large": 0.096, "m5.xlarge": 0.192, "g5.xlarge": 1.006, "g5.12xlarge": 5.672, "g6.xlarge": 0.805,
    "p4d.24xlarge": 32.77, "p5.48xlarge": 98.32,
    "n2-standard-4": 0.194, "g2-standard-8": 0.854, "a2-highgpu-1g": 3.673, "a3-highgpu-8g": 88.25,
}


@dataclass
class ClusterConfig:
    """How to reach a Ray cluster and what a job gets there."""

    kind: str = field(default="local", metadata={
        "help": "local = embedded head on this machine (started, or reused when one is running) | "
                "remote = an existing cluster at `address`."})
    address: str = field(default="", metadata={
        "help": "remote: dashboard / Jobs API URL, e.g. http://127.0.0.1:8265 forwarded by "
                "`ray dashboard infra/aws-gpu.yaml`."})
    token_env: str = field(default="RAY_AUTH_TOKEN", metadata={
        "help": "Name of the environment variable holding the Ray auth token (never the value)."})
    token_file: str = field(default="", metadata={
        "help": "Alternative to token_env: a file holding the token (mode 0600); '' = use token_env."})
    dashboard_host: str = field(default="127.0.0.1", metadata={
        "help": "local: interface of the dashboard / Jobs API; keep loopback unless you need more."})
    dashboard_port: int = field(default=0, metadata={"help": "local: dashboard port; 0 = a free port."})
    num_cpus: int = field(default=0, metadata={"help": "local: CPUs the head offers; 0 = all of this machine."})
    num_gpus: int = field(default=-1, metadata={"help": "local: GPUs the head offers; -1 = detect."})
    state_dir: str = field(default="~/.cache/tracebridge/ray", metadata={
        "help": "local: where the running head's state file, token and Ray temp dir live."})
    python: str = field(default="", metadata={
        "help": "Interpreter of the job; '' = this venv's python (local) or `python` (remote image)."})
    image: str = field(default="", metadata={
        "help": "Container image of the job (runtime_env image_uri); '' = working_dir + the cluster's Python."})
    pip: list[str] = field(default_factory=list, metadata={
        "help": "Extra pip requirements installed into the job's runtime_env (empty = none)."})
    env_vars: dict[str, str] = field(default_factory=dict, metadata={
        "help": "Extra non-secret environment variables of the job (added to the thread/offline defaults)."})
    excludes: list[str] = field(default_factory=lambda: list(DEFAULT_EXCLUDES), metadata={
        "help": "Paths left out of the uploaded working_dir (besides .gitignore'd ones)."})
    entrypoint_num_cpus: float = field(default=0.0, metadata={
        "help": "CPUs reserved for the job driver (0 = none; trials reserve their own)."})
    entrypoint_num_gpus: float = field(default=0.0, metadata={"help": "GPUs reserved for the job driver."})
    entrypoint_resources: dict[str, float] = field(default_factory=dict, metadata={
        "help": "Custom resources reserved for the job driver, e.g. {driver_node: 1} to place it on a node "
                "started with that resource (empty = none)."})
    start_timeout_s: float = field(default=90.0, metadata={"help": "local: seconds to wait for the head to answer."})
    ray_command: str = field(default="", metadata={
        "help": "local: the `ray` executable that starts the head; '' = this venv's (else `ray` on PATH)."})
    request_timeout_s: float = field(default=30.0, metadata={
        "help": "Seconds one Jobs API request may wait to connect, or for the next bytes of its answer, before "
                "the head counts as unreachable (exit 3). Waiting on a job polls with many short requests: "
                "a long job or `logs --follow` is not cut by it."})
    wait_patience_s: float = field(default=300.0, metadata={
        "help": "While waiting on a job (submit, logs --follow, window): seconds its polls may go unanswered "
                "in a row before giving up (exit 3; the job itself keeps running on a remote head)."})
    wait_poll_s: float = field(default=2.0, metadata={
        "help": "Seconds between the job status polls of `submit --wait` (a finished job is seen at most this "
                "long after it ends; each poll is a few requests to the head)."})
    pending_timeout_s: float = field(default=600.0, metadata={
        "help": "While waiting on a job (submit --wait, window): seconds it may stay PENDING (its driver not "
                "started: no node has the entrypoint_* resources it asks for, or its runtime_env is still being "
                "set up) before it is stopped and submit exits 1 naming the resources asked for and those of the "
                "cluster; 0 = wait until Ray fails it (RAY_JOB_START_TIMEOUT_SECONDS on the head, 15 min by "
                "default). Raise it for a runtime_env with large pip installs or an autoscaler adding the node."})

    def validate(self) -> list[str]:
        """Every problem, as ``key=value: what; fix``."""
        p = []
        if self.kind not in CLUSTER_KINDS:
            p.append(f"kind={self.kind}: use local or remote")
        if self.kind == "remote" and not self.address.startswith(("http://", "https://")):
            p.append(f"address={self.address!r}: remote needs the dashboard URL, e.g. http://127.0.0.1:8265")
        if self.token_env and not self.token_env.replace("_", "").isalnum():
            p.append(f"token_env={self.token_env}: must be an environment variable NAME, not a token value")
        if self.dashboard_port < 0 or self.dashboard_port > 65535:
            p.append(f"dashboard_port={self.dashboard_port}: use 0 (free port) or 1..65535")
        if self.request_timeout_s <= 0:
            p.append(f"request_timeout_s={self.request_timeout_s}: must be > 0 seconds (e.g. 30)")
        if self.wait_poll_s <= 0:
            p.append(f"wait_poll_s={self.wait_poll_s}: must be > 0 seconds (e.g. 2)")
        if self.wait_patience_s < 0:
            p.append(f"wait_patience_s={self.wait_patience_s}: must be >= 0 seconds (0 = give up at the first miss)")
        if self.pending_timeout_s < 0:
            p.append(f"pending_timeout_s={self.pending_timeout_s}: must be >= 0 seconds (0 = Ray's own limit)")
        p += [f"entrypoint_resources.{k}={v}: must be >= 0" for k, v in self.entrypoint_resources.items() if v < 0]
        if self.start_timeout_s <= 0:
            p.append(f"start_timeout_s={self.start_timeout_s}: must be > 0 seconds (e.g. 90)")
        if self.num_cpus < 0:
            p.append(f"num_cpus={self.num_cpus}: must be >= 0 (0 = all)")
        if self.num_gpus < -1:
            p.append(f"num_gpus={self.num_gpus}: must be >= 0, or -1 to detect")
        p += [f"{k}={getattr(self, k)}: must be >= 0" for k in ("entrypoint_num_cpus", "entrypoint_num_gpus")
              if getattr(self, k) < 0]
        bad = [k for k in self.env_vars if any(s in k.upper() for s in ("TOKEN", "SECRET", "PASSWORD", "KEY"))]
        for k in bad:
            p.append(f"env_vars.{k}: looks like a secret; secrets stay in the cluster's environment, "
                     "pass only their names")
        return p


@dataclass
class WindowConfig:
    """An ephemeral GPU window: `ray up` → submit → wait → pull → `ray down`."""

    prices: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_PRICES), metadata={
        "help": "USD per hour by instance / machine type of the launcher YAML (budget watchdog, --dry-run)."})
    dashboard_port: int = field(default=8265, metadata={
        "help": "Local port `ray dashboard CLUSTER.yaml` forwards the Jobs API to."})
    token_file: str = field(default="~/.tracebridge/window_auth_token", metadata={
        "help": "Token file shipped to the head by the launcher YAML's file_mounts (created 0600 if missing)."})
    poll_s: float = field(default=10.0, metadata={"help": "Seconds between job status polls."})
    up_timeout_s: float = field(default=1800.0, metadata={"help": "Give up on `ray up` after this long."})
    down_timeout_s: float = field(default=900.0, metadata={"help": "Give up waiting on `ray down` after this long."})
    connect_timeout_s: float = field(default=120.0, metadata={"help": "Wait this long for the forwarded Jobs API."})
    reports_dir: str = field(default="reports", metadata={"help": "Where the pulled report lands (<dir>/<sweep id>)."})

    def validate(self) -> list[str]:
        """Every problem, as ``key=value: what; fix``."""
        p = [f"window.prices.{k}={v}: must be >= 0 USD/h" for k, v in self.prices.items() if v < 0]
        p += [f"window.{k}={getattr(self, k)}: must be > 0 seconds" for k in
              ("poll_s", "up_timeout_s", "down_timeout_s", "connect_timeout_s") if getattr(self, k) <= 0]
        if not 1 <= self.dashboard_port <= 65535:
            p.append(f"window.dashboard_port={self.dashboard_port}: use a port in 1..65535 (default 8265)")
        return p


def cluster_from_spec(spec: str, overrides: list[str] | tuple[str, ...] = ()) -> ClusterConfig:
    """The cluster a sweep names: ``local``, a ``configs/cluster/*.yaml`` path or a dashboard URL,
    then ``key=value`` ``overrides`` of its keys (``request_timeout_s=5``).

    Raises:
        tracebridge.config.ConfigError: unknown spec, invalid cluster YAML or a bad override.
    """
    from tracebridge.config import ConfigError, load_config

    if spec in ("", "local"):
        return load_config(ClusterConfig, None, list(overrides))
    if spec.startswith(("http://", "https://")):
        return load_config(ClusterConfig, None, ["kind=remote", f"address={spec}", *overrides])
    if spec.endswith((".yaml", ".yml")):
        return load_config(ClusterConfig, spec, list(overrides))
    raise ConfigError([(f"cluster={spec}: use local, a configs/cluster/*.yaml file or a dashboard URL "
                        "(http://127.0.0.1:8265)")])


def expand(path: str) -> Path:
    """A config path with ``~`` and environment variables expanded."""
    import os

    return Path(os.path.expandvars(os.path.expanduser(path)))


def job_env(cfg: ClusterConfig) -> dict[str, Any]:
    """The job's environment variables: the defaults plus the cluster's non-secret extras."""
    return {**DEFAULT_ENV, **cfg.env_vars}
