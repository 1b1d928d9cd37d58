"""Typed config of a sweep (YAML under ``configs/sweep/``): which bundle, which grid
(role × variant × ablation × seed), how each trial trains (a ``configs/train`` YAML plus
overrides), what a trial may use (CPU/GPU/memory, Ray Train workers), where results go (storage
URI), how failures are retried, the budget, the cluster and the GPU window.

Ablations are ``TrainConfig`` keys with value lists (``train.lr: [1.0e-3, 3.0e-3]``); written
nested (``train: {lr: [...]}``, as a ``ablations.train.lr=[...]`` override produces) they are
flattened to dotted keys. The sweep id is ``<name>-<hash>`` of the fields that change results.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracebridge.cluster.config import WindowConfig
from tracebridge.export.config import RetryConfig, StorageConfig
from tracebridge.train.config import ROLES, Variant

# Text fields whose empty value validate() explains (an empty override would otherwise be None).
_TEXT_KEYS = ("name", "bundle", "storage", "work_dir")
# Fields that say where or how fast a sweep runs, not what it computes: left out of the sweep id.
NON_IDENTITY = ("cluster", "window", "work_dir", "budget", "resources", "mlflow", "max_failures", "push",
                "storage_io", "bundle_id", "sweep_id")  # bundle_id: the sweep id names the bundle's id already
# TrainConfig keys each trial's grid cell sets (from the sweep key named): an ablation or override of one
# would be overwritten (or overwrite the cell's) while the trial id and report named the other value
GRID_KEYS = {"role": "roles", "variant": "variants", "seed": "seeds"}


@dataclass
class ResourcesConfig:
    """What one trial reserves; ``workers > 1`` (or ``use_train``) runs it through Ray Train."""

    cpu: float = field(default=1.0, metadata={"help": "CPUs per trial (per worker with Ray Train)."})
    gpu: float = field(default=0.0, metadata={"help": "GPUs per trial (per worker with Ray Train); 0 = CPU."})
    memory_gb: float = field(default=0.0, metadata={"help": "Memory reserved per trial in GiB; 0 = no reservation."})
    workers: int = field(default=1, metadata={
        "help": "Ray Train workers per trial (TorchTrainer + ScalingConfig); 1 = a plain Tune trial."})
    use_train: bool = field(default=False, metadata={
        "help": "Run even a 1-worker trial through Ray Train (the multi-GPU code path, on CPU)."})

    def problems(self) -> list[str]:
        """Every problem, as ``key=value: what; fix``."""
        p = [f"resources.{k}={getattr(self, k)}: must be >= 0" for k in ("cpu", "gpu", "memory_gb")
             if getattr(self, k) < 0]
        if self.workers < 1:
            p.append(f"resources.workers={self.workers}: must be >= 1")
        if self.gpu > 1 and self.gpu != int(self.gpu):
            p.append(f"resources.gpu={self.gpu}: fractions only below 1 GPU")
        return p

    @property
    def distributed(self) -> bool:
        """Trials run through Ray Train's TorchTrainer."""
        return self.workers > 1 or self.use_train


@dataclass
class BudgetConfig:
    """Limits checked before and while the sweep runs."""

    max_trials: int = field(default=64, metadata={
        "help": "Refuse a grid that trains more trials than this (cells that train the same model count once; 0 = no cap)."})
    max_hours: float = field(default=0.0, metadata={
        "help": "Wall-clock cap of each attempt's Tune run, in hours; 0 = none. At the cap the run is interrupted "
                "(its state saved, the job exits 1 naming the unfinished trials); `submit --resume` continues them "
                "from their last checkpoint under the budget it is given."})
    max_concurrent: int = field(default=0, metadata={
        "help": "Trials at once; 0 = cluster GPUs / GPUs per trial (GPU sweeps) or as many as CPUs allow. Each "
                "attempt uses its own value: `submit --resume budget.max_concurrent=N` caps the trials started "
                "after the resume (those already started continue)."})

    def problems(self) -> list[str]:
        """Every problem, as ``key=value: what; fix``."""
        p = [f"budget.{k}={getattr(self, k)}: must be >= 0" for k in ("max_trials", "max_hours", "max_concurrent")
             if getattr(self, k) < 0]
        return p


@dataclass
class SweepConfig:
    """One sweep: the grid, the trial recipe, resources, storage, failures, budget, cluster."""

    name: str = field(default="sweep", metadata={"help": "Label; the sweep id is <name>-<config hash>."})
    bundle: str = field(default="", metadata={
        "help": "Export bundle: a folder, file://, s3:// or gs:// URI (the folder holding manifest.json)."})
    bundle_id: str = field(default="", metadata={
        "help": "The id (sha256) the bundle at `bundle` must have; '' = whatever it holds. `tracebridge submit` "
                "sets it to the id it checked, so a job never trains a bundle changed after submit (a moved "
                "LATEST pointer, a re-export into the same folder)."})
    sweep_id: str = field(default="", metadata={
        "help": "The id to run under; '' = <name>-<config hash>-<bundle id>. `tracebridge submit --resume` sets it "
                "when the sweep to continue was started by an earlier version, which named the same config "
                "otherwise (tracebridge.sweep.identity); only such an id is accepted."})
    roles: list[str] = field(default_factory=lambda: list(ROLES), metadata={"help": "Roles trained."})
    variants: list[str] = field(default_factory=lambda: ["baseline", "optimized"], metadata={
        "help": "Named variants compared per role (baseline | optimized)."})
    seeds: list[int] = field(default_factory=lambda: [0], metadata={"help": "Seeds of every grid cell."})
    ablations: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "TrainConfig keys with value lists, crossed into the grid (train.lr: [1e-3, 3e-3]); {} = none."})
    train_config: str | None = field(default="configs/train/cpu_tiny.yaml", metadata={
        "help": "The trial recipe (a configs/train YAML, relative to the working dir); None = schema defaults."})
    model_config: str | None = field(default=None, metadata={
        "help": "A configs/model YAML replacing the recipe's model block; None = keep it."})
    overrides: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "TrainConfig keys set for every trial (train.max_steps: 20)."})
    variant_overrides: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "Per variant name, TrainConfig keys set only for it (optimized: {dpo.beta: 0.2})."})
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    storage: str = field(default="file://./storage", metadata={
        "help": "Storage URI (folder, file://, s3://, gs://): Tune runs under <storage>/<sweep id>, reports "
                "under <storage>/reports/<sweep id>."})
    work_dir: str = field(default="", metadata={
        "help": "Node-local scratch for trials and fetched bundles; '' = <tmp>/tracebridge/<sweep id>."})
    max_failures: int = field(default=2, metadata={
        "help": "Retries of a failed trial (FailureConfig; from its last checkpoint); -1 = unlimited. A trial "
                "whose config and rows cannot train (more than data.max_rows_dropped of its rows dropped at "
                "max_length) is not retried. A resumed sweep (`submit --resume`) gives each trial this many "
                "more retries than the failures it already had."})
    push: RetryConfig = field(default_factory=RetryConfig, metadata={
        "help": "Retries of the report push when storage is unreachable (push.attempts, push.backoff_s doubled "
                "up to push.max_backoff_s); after the last, the job exits 3 with the report kept locally."})
    storage_io: StorageConfig = field(default_factory=StorageConfig, metadata={
        "help": "How the bundle and storage are reached, as by `tracebridge push`/`fetch` (configs/storage/), "
                "also by Ray Tune's and Train's checkpoints and experiment state: storage_io.request_timeout_s "
                "(s3://, gs://: most seconds a request waits to connect or for the next bytes of its answer; the S3 "
                "client's own retries are off), storage_io.retry.* (tries of every read, fetch and copy but the "
                "report push, which takes push.*; Tune's S3 requests are tried retry.attempts times by the AWS "
                "SDK), s3_endpoint_url, s3_region, gs_project, options (fsspec's; with an s3:// storage only endpoint_url, "
                "anon and use_ssl, which Tune's S3 takes too). "
                "update_latest and verify_remote are for `tracebridge push` and unused here."})
    keep_models: bool = field(default=True, metadata={
        "help": "Put each trial's final model into its final checkpoint on storage (for jobs/eval.py); a DPO "
                "trial's also its reference (ref_model/, the SFT model), for reward_margin."})
    mlflow: bool = field(default=False, metadata={
        "help": "Log trials to MLflow (file store under <storage>/mlflow) when mlflow is installed."})
    cluster: str = field(default="local", metadata={
        "help": "local (embedded head on 127.0.0.1) | configs/cluster/*.yaml | dashboard URL."})
    window: WindowConfig = field(default_factory=WindowConfig)

    def validate(self) -> list[str]:
        """Every problem of the sweep itself (the trial recipes are checked by ``grid.check_trials``)."""
        p = []
        if not self.bundle:
            p.append("bundle='': set the export bundle, e.g. bundle=bundles/demo or bundle=s3://bucket/bundles/x")
        p += [f"roles: {r!r} unknown; use {', '.join(ROLES)}" for r in self.roles if r not in ROLES]
        known = {v.value for v in Variant}
        p += [f"variants: {v!r} unknown; use {', '.join(sorted(known))}" for v in self.variants if v not in known]
        for k in ("roles", "variants", "seeds"):
            if not getattr(self, k):
                p.append(f"{k}=[]: needs at least one value")
            elif len(set(map(str, getattr(self, k)))) != len(getattr(self, k)):
                p.append(f"{k}={getattr(self, k)}: has duplicates")
        for k, v in flat_keys(self.ablations).items():
            name, _, last = k.rpartition(".")
            if last.isdigit() and name:  # ablations.train.lr.0=1e-4: one item, by index
                p.append(f"ablations.{k}={v!r}: an ablation's values are set as a whole list, not by index; "
                         f"e.g. ablations.{name}=[{v},...]")
            elif not isinstance(v, list) or not v:
                p.append(f"ablations.{k}={v!r}: must be a non-empty list of values")
        p += [f"variant_overrides.{k}: not one of variants {self.variants}"
              for k in self.variant_overrides if k not in self.variants]
        p += self._grid_key_problems()
        if self.max_failures < -1:
            p.append(f"max_failures={self.max_failures}: use -1 (unlimited), 0 or a retry count")
        if not self.storage:
            p.append("storage='': set a storage URI, e.g. file://./storage or s3://bucket/prefix")
        from tracebridge.export.storage import uri_problem

        # before local paths are made absolute: 's3:/bucket' would become the folder ./s3:/bucket
        p += [f"{k}: {bad}" for k in ("bundle", "storage") if (bad := uri_problem(getattr(self, k) or ""))]
        if (self.storage or "").startswith(("s3://", "s3a://")):  # Tune's own checkpoints go through pyarrow's S3
            p += [f"storage_io.{q}" for q in self.storage_io.arrow_s3_problems()]
        if self.bundle_id and not re.fullmatch(r"[0-9a-f]{64}", self.bundle_id):
            p.append(f"bundle_id={self.bundle_id!r}: not a bundle id (64 hex digits, the manifest's bundle_id); "
                     "'' = any")
        if not self.name or "/" in self.name:
            p.append(f"name={self.name!r}: a non-empty label without '/'")
        return (p + self.resources.problems() + self.budget.problems() + self.push.problems("push")
                + [f"storage_io.{q}" for q in self.storage_io.validate()] + self.window.validate())

    def _grid_key_problems(self) -> list[str]:
        """An ablation or override of a key the grid sets per trial (``GRID_KEYS``): refused, naming the sweep
        key to use. Before, ``ablations.role=[worker]`` in a ``roles: [verifier]`` sweep trained worker
        trials named and checked as verifier ones, and ``overrides.seed=3`` was dropped without a word."""
        blocks = [("ablations", self.ablations), ("overrides", self.overrides),
                  *((f"variant_overrides.{v}", o) for v, o in self.variant_overrides.items())]
        return [f"{where}.{k}: each trial's {k} is its grid cell's, from {GRID_KEYS[k]}; set "
                f"{GRID_KEYS[k]}=[...] instead" for where, keys in blocks if isinstance(keys, dict)
                for k in flat_keys(keys) if k in GRID_KEYS]


def flat_keys(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": [..]}}`` → ``{"train.lr": [..]}``; dotted keys stay as they are."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat_keys(v, key + "."))
        else:
            out[key] = v
    return out


def load_sweep_config(path: str | None, overrides: list[str] | tuple[str, ...] = ()) -> SweepConfig:
    """A ``SweepConfig``: schema defaults ← YAML ← ``key=value`` overrides, with the ablation,
    override and variant maps flattened to dotted ``TrainConfig`` keys, and local ``bundle``,
    ``storage`` and ``work_dir`` paths made absolute (trials run in other folders; a submitted job
    in a copy of the working dir).

    Raises:
        tracebridge.config.ConfigError: every problem at once.
    """
    from tracebridge.config import load_config

    cfg = load_config(SweepConfig, path, [_empty_as_blank(o) for o in overrides])
    cfg.ablations = flat_keys(_plain(cfg.ablations))
    cfg.overrides = flat_keys(_plain(cfg.overrides))
    cfg.variant_overrides = {k: flat_keys(_plain(v)) for k, v in _plain(cfg.variant_overrides).items()}
    from tracebridge.sweep.storage import absolutize

    for k in ("bundle", "storage", "work_dir"):
        if getattr(cfg, k):
            setattr(cfg, k, absolutize(getattr(cfg, k)))
    return cfg


def cluster_override(spec: str, root: Path) -> str:
    """The ``cluster=`` override that records in a job's config (and so in its report manifest's
    ``config.sweep.cluster``) the cluster ``submit --cluster`` or ``window --cluster`` ran it on, in place of
    the sweep YAML's own value: ``local`` and a URL as given, a YAML path relative to the working dir ``root``
    when inside it (the job runs in a copy of it), else absolute."""
    if spec in ("", "local") or "://" in spec:
        return f"cluster={spec or 'local'}"
    path = Path(spec).expanduser().resolve()
    return f"cluster={path.relative_to(root.resolve()).as_posix() if path.is_relative_to(root.resolve()) else path}"


def _empty_as_blank(override: str) -> str:
    """``bundle=`` as ``bundle=''``: OmegaConf reads an empty value as None, which a str field
    refuses with a type error ("Incompatible value 'None'") instead of ``validate()``'s message
    that names the key and an example."""
    key, sep, value = override.partition("=")
    return f"{key}=''" if sep and key.strip() in _TEXT_KEYS and not value.strip() else override


def _plain(v: Any) -> Any:
    from omegaconf import DictConfig, ListConfig, OmegaConf

    return OmegaConf.to_container(v, resolve=True) if isinstance(v, (DictConfig, ListConfig)) else v
