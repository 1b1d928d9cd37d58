"""Typed configs of the training recipes: one trial (``TrainConfig``, YAML under ``configs/train/``);
the model factory's ``ModelConfig`` (YAML under ``configs/model/``) is in ``model_config``.

``TrainConfig`` groups: ``model`` (what to build), ``data`` (views, curation), ``behaviour`` (the
prompt/tool/response policy the rows are put under, ``tracebridge.train.behaviour``), ``train`` (the
SFT recipe) and ``dpo`` (TRL recipe knobs, each with a ``lora`` block and an open ``throughput`` block for the
GPU levers of ``tracebridge.train.throughput``) and ``eval`` (offline and closed-loop
metrics, bootstrap). Variants are a StrEnum whose properties say what they do.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from tracebridge.train.lora_config import DEFAULT_LORA_TARGETS, LoraConfig  # noqa: F401 - re-exported (they lived here)
from tracebridge.train.model_config import ModelConfig
from tracebridge.train.trl_choices import (  # noqa: F401 - SCHEDULERS, DPO_LOSS_TYPES re-exported (they lived here)
    DPO_LOSS_TYPES,
    LABEL_SMOOTHING_LOSSES,
    SCHEDULERS,
    optimizer_problems,
    scheduler_problems,
    smoothing_problems,
)

ROLES = ("planner", "worker", "verifier")
MIN_LENGTH = 32  # tokens a row needs to keep any of its answer after the chat markup


class Variant(enum.StrEnum):
    """The two named recipes compared per role."""

    BASELINE = "baseline"
    OPTIMIZED = "optimized"

    @property
    def curates(self) -> bool:
        """Dedup, recovery up-weighting and feedback labels before SFT."""
        return self is Variant.OPTIMIZED

    @property
    def runs_dpo(self) -> bool:
        """SFT is followed by DPO on the role's preference view (when the role has one)."""
        return self is Variant.OPTIMIZED


@dataclass
class RecipeConfig:
    """Knobs shared by the SFT and DPO recipes (TRL trainer arguments)."""

    lr: float = field(default=1e-3, metadata={"help": "Peak learning rate; typical 1e-5..2e-4 for real models."})
    max_steps: int = field(default=60, metadata={"help": "Optimizer steps; -1 = run num_epochs."})
    num_epochs: float = field(default=1.0, metadata={"help": "Epochs when max_steps = -1."})
    batch_size: int = field(default=8, metadata={"help": "Per-device micro-batch (rows, or pairs for DPO)."})
    grad_accum: int = field(default=1, metadata={"help": "Gradient accumulation steps."})
    max_length: int = field(default=512, metadata={"help": "Tokens per row (longer rows are truncated)."})
    warmup_ratio: float = field(default=0.05, metadata={"help": "Share of steps with linear warm-up."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    max_grad_norm: float = field(default=1.0, metadata={
        "help": "Clip the gradient norm to this before each step (transformers' default); 0 = no clipping."})
    scheduler: str = field(default="cosine", metadata={"help": "transformers lr_scheduler_type."})
    optim: str = field(default="adamw_torch_fused", metadata={
        "help": "transformers optimizer (TrainingArguments.optim): adamw_torch_fused (its default) | adamw_torch | "
                "adafactor | sgd | ... (trl_choices.OPTIMIZERS)."})
    adam_beta1: float = field(default=0.9, metadata={"help": "Adam(W) beta1, in [0, 1)."})
    adam_beta2: float = field(default=0.999, metadata={"help": "Adam(W) beta2, in [0, 1)."})
    adam_epsilon: float = field(default=1e-8, metadata={"help": "Adam(W) epsilon, > 0."})
    neftune_noise_alpha: float | None = field(default=None, metadata={
        "help": "NEFTune: uniform noise of this scale added to the input embeddings while training (typical 5); "
                "None = none."})
    bf16: bool | None = field(default=None, metadata={"help": "None = bf16 when CUDA is available."})
    gradient_checkpointing: bool = field(default=False, metadata={
        "help": "Recompute activations (saves memory on big models; only slows tiny CPU ones)."})
    logging_steps: int = field(default=5, metadata={"help": "Log the loss every N steps (the loss curve)."})
    save_steps: int = field(default=0, metadata={"help": "Checkpoint every N steps; 0 = only at the end."})
    dataset_num_proc: int = field(default=0, metadata={
        "help": "Processes that prepare (tokenize) the dataset; 0 = one, in the trial's process."})
    lora: LoraConfig = field(default_factory=LoraConfig)
    throughput: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "Options passed to tracebridge.train.throughput.apply_throughput (GPU levers: padding-free "
                "packing, Liger kernels, ...); empty = TRL defaults."})

    def problems(self, prefix: str) -> list[str]:
        """Every problem, as ``<prefix>.key=value: what; fix``."""
        p = []
        if self.lr <= 0:
            p.append(f"{prefix}.lr={self.lr}: must be > 0; typical 1e-5..2e-4 (1e-3 for the tiny model)")
        if self.max_steps == 0 or self.max_steps < -1:
            p.append(f"{prefix}.max_steps={self.max_steps}: must be > 0, or -1 to use num_epochs")
        if self.dataset_num_proc < 0:
            p.append(f"{prefix}.dataset_num_proc={self.dataset_num_proc}: must be >= 0 (0 = one process)")
        for k in ("batch_size", "grad_accum", "max_length", "logging_steps"):
            if getattr(self, k) <= 0:
                p.append(f"{prefix}.{k}={getattr(self, k)}: must be > 0")
        if 0 < self.max_length < MIN_LENGTH:  # every row would be cut before its answer: no rows left to train
            p.append(f"{prefix}.max_length={self.max_length}: must be >= {MIN_LENGTH} tokens (the chat markup "
                     "alone takes ~20); typical 512..2048")
        if self.save_steps < 0:
            p.append(f"{prefix}.save_steps={self.save_steps}: must be >= 0 (0 = only at the end)")
        if self.max_steps == -1 and self.num_epochs <= 0:
            p.append(f"{prefix}.num_epochs={self.num_epochs}: must be > 0 when {prefix}.max_steps=-1")
        if not 0 <= self.warmup_ratio < 1:
            p.append(f"{prefix}.warmup_ratio={self.warmup_ratio}: must be in [0, 1)")
        if self.weight_decay < 0:
            p.append(f"{prefix}.weight_decay={self.weight_decay}: must be >= 0 (0 = none; typical 0.0..0.1)")
        if self.max_grad_norm < 0:
            p.append(f"{prefix}.max_grad_norm={self.max_grad_norm}: must be >= 0 (0 = no clipping; typical 1.0)")
        p += scheduler_problems(prefix, self.scheduler) + optimizer_problems(prefix, self)
        return p + (self.lora.problems(f"{prefix}.lora") if self.lora.enabled else [])


@dataclass
class SFTRecipeConfig(RecipeConfig):
    """SFTTrainer: assistant-only loss on conversational rows."""

    packing: bool = field(default=False, metadata={"help": "Pack rows into max_length sequences (BFD)."})
    assistant_only_loss: bool = field(default=True, metadata={
        "help": "Loss only on assistant tokens (needs the template's generation markers)."})


@dataclass
class DPORecipeConfig(RecipeConfig):
    """DPOTrainer on prompt/chosen/rejected rows, starting from the SFT model."""

    lr: float = field(default=2e-4, metadata={"help": "Peak learning rate (lower than SFT)."})
    max_steps: int = field(default=30, metadata={"help": "Optimizer steps; -1 = run num_epochs."})
    beta: float = field(default=0.1, metadata={"help": "KL strength of DPO; 0.1 is the paper value."})
    loss_type: str = field(default="sigmoid", metadata={"help": "TRL loss_type: sigmoid | ipo | hinge | ..."})
    label_smoothing: float = field(default=0.0, metadata={
        "help": "TRL label_smoothing in [0, 0.5), read by the exo_pair, robust, aot and aot_unpaired losses only: robust "
                "DPO's chance a label is flipped (typical 0.1), EXO's epsilon (> 0 required; typical 1e-3). 0 = none."})
    ref: str = field(default="model", metadata={
        "help": "model = a frozen copy of the SFT model | adapter = LoRA with the adapter-disabled base as "
                "reference (needs lora.enabled)."})


@dataclass
class DataConfig:
    """Which rows train and how the optimized variant curates them."""

    verify_bundle: bool = field(default=True, metadata={"help": "Check the bundle manifest's hashes first."})
    max_train_rows: int = field(default=0, metadata={"help": "Cap on SFT rows (0 = all)."})
    max_pref_rows: int = field(default=0, metadata={"help": "Cap on DPO preference pairs (0 = all)."})
    max_eval_rows: int = field(default=0, metadata={"help": "Cap on test rows evaluated (0 = all)."})
    eval_split: str = field(default="test", metadata={"help": "Split evaluated offline."})
    dedup: bool = field(default=True, metadata={"help": "optimized: drop rows whose prompt+target repeat."})
    prepared_cache: str | None = field(default=None, metadata={
        "help": "Folder (node-local) where the first trial of a role/variant stores TRL's prepared SFT/DPO sets and "
                "the others load it (tracebridge.train.prepared); auto = the node's temp dir; None = every trial "
                "prepares its own."})
    recovery_weight: int = field(default=3, metadata={
        "help": "optimized: copies of each failure→recovery row (1 = no up-weighting)."})
    feedback_weight: int = field(default=2, metadata={
        "help": "optimized: copies of rows with positive feedback labels; negative ones are dropped."})
    fit_context: bool = field(default=False, metadata={"help": "Drop the oldest context messages of conversation rows "
        "whose first target (DPO: longer answer) does not fit in max_length, by tokens (tracebridge.train.context_fit)."})
    max_rows_dropped: float = field(default=0.5, metadata={
        "help": "Largest fraction (0..1) of a recipe's rows TRL may drop (longer than max_length, no trainable token "
                "left) and the trial still trains on the rest; over it the trial fails before training, naming the "
                "fix (a longer max_length, data.fit_context). 1 = fail only when every row is dropped."})

    def problems(self) -> list[str]:
        """Every problem, as ``key=value: what; fix``."""
        p = []
        for k in ("max_train_rows", "max_pref_rows", "max_eval_rows"):
            if getattr(self, k) < 0:  # a negative cap would slice rows off the end, or crash the sampler
                p.append(f"data.{k}={getattr(self, k)}: must be >= 0 (0 = all rows)")
        for k in ("recovery_weight", "feedback_weight"):
            if getattr(self, k) < 1:
                p.append(f"data.{k}={getattr(self, k)}: must be >= 1 (1 = no up-weighting)")
        if not 0 <= self.max_rows_dropped <= 1:
            p.append(f"data.max_rows_dropped={self.max_rows_dropped}: must be in 0..1 (a fraction of the rows)")
        if self.eval_split not in ("train", "validation", "test"):
            p.append(f"data.eval_split={self.eval_split}: use train, validation or test")
        return p


SYSTEM_PROMPT_MODES = ("replace", "prepend")
TOOL_SCHEMAS = ("full", "names", "none")
RESPONSES = ("as_is", "calls_only")


@dataclass
class BehaviourConfig:
    """The behaviour policy a trial trains and evaluates under (the defaults keep the rows as exported)."""

    system_prompt: str | None = field(default=None, metadata={
        "help": "Prompt policy: None = the rows' system turn as exported; a string = this system text "
                "(see system_prompt_mode); '' with replace = no system turn. Quote a text holding ': ' "
                "(behaviour.system_prompt='Worker: call one tool.')."})
    system_prompt_mode: str = field(default="replace", metadata={
        "help": "replace (the rows' system turn becomes system_prompt; rows without one get it) | prepend "
                "(system_prompt, a blank line, then the exported system text)."})
    tool_schemas: str = field(default="full", metadata={
        "help": "Tool policy: full (as exported) | names (each tool's name and description, no parameter "
                "schema) | none (no tools field: the call is inferred from the context)."})
    response: str = field(default="as_is", metadata={
        "help": "Response policy: as_is | calls_only (assistant turns that carry tool calls lose their prose "
                "content, in SFT targets and both sides of pairs; answers are kept)."})

    def problems(self) -> list[str]:
        """Every problem, as ``key=value: what; fix``."""
        p = [f"behaviour.{k}={getattr(self, k)}: use one of {', '.join(ok)}"
             for k, ok in (("system_prompt_mode", SYSTEM_PROMPT_MODES), ("tool_schemas", TOOL_SCHEMAS),
                           ("response", RESPONSES)) if getattr(self, k) not in ok]
        if self.system_prompt == "" and self.system_prompt_mode == "prepend":
            p.append("behaviour.system_prompt='': nothing to prepend; give a text, or use "
                     "system_prompt_mode=replace to drop the system turn")
        return p


@dataclass
class ClosedLoopConfig:
    """The trained role inside the simulator, other roles scripted."""

    enabled: bool = field(default=False, metadata={"help": "Run closed-loop episodes after offline eval."})
    families: list[str] = field(default_factory=list, metadata={"help": "Goal families; empty = all."})
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3], metadata={"help": "Fixed episode seeds."})
    max_steps: int = field(default=6, metadata={"help": "Orchestrator cycles per episode."})
    max_new_tokens: int = field(default=96, metadata={"help": "Tokens generated per model call."})
    skill: dict[str, float] = field(default_factory=lambda: {
        "wrong_step_order": 0.10, "bad_args": 0.15, "unknown_tool": 0.06, "recover": 0.85,
        "premature_stop": 0.05, "missed_stop": 0.08, "needless_replan": 0.06}, metadata={
        "help": "Mistake rates of the scripted roles around the trained one (tracebridge.sim SkillConfig keys)."})
    failures: dict[str, float] = field(default_factory=lambda: {
        "flaky_rate": 0.15, "misleading_rate": 0.1, "unsatisfiable_rate": 0.15}, metadata={
        "help": "Controlled failures of the benchmark (tracebridge.sim FailureProfile keys)."})

    def problems(self) -> list[str]:
        """Every problem, as ``key=value: what; fix`` (none while disabled)."""
        if not self.enabled:
            return []
        p = []
        if not self.seeds:
            p.append("eval.closed_loop.seeds=[]: give at least one episode seed")
        defaults = ClosedLoopConfig.__dataclass_fields__
        p += [f"eval.closed_loop.{k}={getattr(self, k)}: must be > 0 (default {defaults[k].default})"
              for k in ("max_steps", "max_new_tokens") if getattr(self, k) <= 0]
        try:
            from tracebridge.sim.config import FailureProfile, SkillConfig
            from tracebridge.sim.families import FAMILIES
        except ImportError:
            return p + ["eval.closed_loop.enabled=true: tracebridge.sim is not available"]
        p += [f"eval.closed_loop.families: unknown family {f!r} (known: {', '.join(FAMILIES)})"
              for f in self.families if f not in FAMILIES]
        for key, cls in (("skill", SkillConfig), ("failures", FailureProfile)):
            p += [f"eval.closed_loop.{key}.{k}: unknown key (known: {', '.join(cls.__dataclass_fields__)})"
                  for k in getattr(self, key) if k not in cls.__dataclass_fields__]
        return p


@dataclass
class EvalConfig:
    """Offline metrics on the test split, bootstrap, closed loop."""

    max_new_tokens: int = field(default=128, metadata={"help": "Greedy tokens generated per planner/worker row."})
    batch_size: int = field(default=16, metadata={"help": "Rows per generation / scoring batch."})
    max_batch_tokens: int = field(default=16384, metadata={
        "help": "Padded tokens per generation / scoring batch (rows x the longest, rows batched by length): "
                "bounds attention memory on long prompts, and scoring logits to the batch's hidden-state "
                "memory (tracebridge.eval.predict); a longer row goes alone."})
    fit_context: bool | None = field(default=None, metadata={
        "help": "Drop the oldest context messages of a prompt whose reference reply (pairs: longer answer) "
                "does not fit in max_length, by the training rule (tracebridge.train.context_fit); "
                "None = as data.fit_context."})
    max_length: int = field(default=0, metadata={
        "help": "Tokens a prompt plus its reference may take when fitting; 0 = train.max_length "
                "(pairs: dpo.max_length), what the role trained at."})
    verifier_method: str = field(default="likelihood", metadata={
        "help": "likelihood = rank the three 'verdict: X' continuations by log-probability | "
                "generate = greedy reply parsed with schema/roles.py."})
    n_boot: int = field(default=1000, metadata={"help": "Bootstrap resamples."})
    ci: float = field(default=0.95, metadata={"help": "Interval coverage."})
    closed_loop: ClosedLoopConfig = field(default_factory=ClosedLoopConfig)

    def problems(self) -> list[str]:
        """Every problem, the closed loop's included, as ``key=value: what; fix``."""
        p = []
        if self.verifier_method not in ("likelihood", "generate"):
            p.append(f"eval.verifier_method={self.verifier_method}: use likelihood or generate")
        if not 0.5 <= self.ci < 1:
            p.append(f"eval.ci={self.ci}: must be in [0.5, 1)")
        if self.n_boot < 100:
            p.append(f"eval.n_boot={self.n_boot}: use >= 100 resamples")
        for k in ("batch_size", "max_new_tokens", "max_batch_tokens"):
            if getattr(self, k) <= 0:
                p.append(f"eval.{k}={getattr(self, k)}: must be > 0")
        if self.max_length < 0 or 0 < self.max_length < MIN_LENGTH:
            p.append(f"eval.max_length={self.max_length}: must be 0 (train.max_length) or >= {MIN_LENGTH} tokens")
        return p + self.closed_loop.problems()


@dataclass
class TrainConfig:
    """One trial: a role, a variant, a seed, and how to train and evaluate it."""

    role: str = field(default="verifier", metadata={"help": "planner | worker | verifier."})
    variant: str = field(default="baseline", metadata={"help": "baseline | optimized (see Variant)."})
    seed: int = field(default=0, metadata={"help": "Seed of data order, init and dropout."})
    threads: int = field(default=1, metadata={"help": "torch CPU threads (1 is fastest for tiny models)."})
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    behaviour: BehaviourConfig = field(default_factory=BehaviourConfig)
    train: SFTRecipeConfig = field(default_factory=SFTRecipeConfig)
    dpo: DPORecipeConfig = field(default_factory=DPORecipeConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def validate(self) -> list[str]:
        """Every problem of the trial config at once."""
        p = []
        if self.role not in ROLES:
            p.append(f"role={self.role}: use one of {', '.join(ROLES)}")
        if self.variant not in {v.value for v in Variant}:
            p.append(f"variant={self.variant}: use baseline or optimized")
        if self.threads < 1:
            p.append(f"threads={self.threads}: must be >= 1")
        if not 0 <= self.seed < 2**32:  # numpy and torch refuse other seeds mid-trial
            p.append(f"seed={self.seed}: must be in [0, 2**32)")
        p += self.model.validate() + self.data.problems() + self.behaviour.problems() + self.eval.problems()
        p += self.train.problems("train") + self.dpo.problems("dpo")
        if self.dpo.ref not in ("model", "adapter"):
            p.append(f"dpo.ref={self.dpo.ref}: use model or adapter")
        if self.dpo.ref == "adapter" and not self.dpo.lora.enabled:
            p.append("dpo.ref=adapter: needs dpo.lora.enabled=true (the disabled adapter is the reference)")
        if self.eval.closed_loop.enabled and self.behaviour != BehaviourConfig():
            p.append("eval.closed_loop.enabled=true: the simulator prompts the model as exported, not under the "
                     "behaviour.* policy it was trained with; turn one of them off")
        if self.dpo.beta <= 0:
            p.append(f"dpo.beta={self.dpo.beta}: must be > 0; the paper uses 0.1")
        if self.dpo.loss_type not in DPO_LOSS_TYPES:
            p.append(f"dpo.loss_type={self.dpo.loss_type}: not a TRL DPO loss; use one of {', '.join(DPO_LOSS_TYPES)}")
        p += smoothing_problems(self.dpo.loss_type, self.dpo.label_smoothing)
        from tracebridge.train.throughput import throughput_problems

        p += throughput_problems("sft", self.train.throughput, "train.throughput")
        p += throughput_problems("dpo", self.dpo.throughput, "dpo.throughput")
        return p


def _dotted(prefix: str, value: Any) -> list[str]:
    if isinstance(value, dict):
        return [o for k, v in value.items() for o in _dotted(f"{prefix}.{k}", v)]
    import json

    return [f"{prefix}={json.dumps(value) if not isinstance(value, str) else value}"]


def _check_model_block(model_path: str, block: dict[str, Any]) -> None:
    """A ``--model`` YAML holds ``ModelConfig`` keys at the top; a train (or any other) config given
    there would otherwise turn into one 'unknown key' line per nested value."""
    from tracebridge.config import ConfigError

    known = ModelConfig.__dataclass_fields__
    unknown = [k for k in block if k not in known]
    if unknown or not block:
        what = f"unknown key(s) {', '.join(map(str, unknown))}" if unknown else "no keys"
        raise ConfigError([(f"{model_path}: not a model config ({what}; model keys: {', '.join(known)}); give a "
                            "configs/model YAML such as configs/model/tiny.yaml")])


def load_train_config(path: str | None = None, overrides: list[str] | tuple[str, ...] = (),
                      model_path: str | None = None) -> TrainConfig:
    """A ``TrainConfig``: schema defaults ← ``path`` ← the model YAML ``model_path`` (replaces the
    ``model`` block's values) ← ``key=value`` overrides.

    Raises:
        tracebridge.config.ConfigError: every problem at once.
    """
    from tracebridge.config import ConfigError, load_config, read_yaml

    model_overrides: list[str] = []
    if model_path:
        from omegaconf import OmegaConf

        block = OmegaConf.to_container(read_yaml(model_path))
        _check_model_block(model_path, block)
        model_overrides = _dotted("model", block)
    cfg = load_config(TrainConfig, path, [*model_overrides, *overrides])
    ignored = [f"{k}={v}: ignored while {k[:-11]}.max_steps={getattr(cfg, k[:-11]).max_steps} (max_steps wins); set "
               f"{k[:-11]}.max_steps=-1 to train by epochs" for k, _, v in (o.partition("=") for o in overrides)
               if k in ("train.num_epochs", "dpo.num_epochs") and getattr(cfg, k[:-11]).max_steps != -1]
    if ignored:  # an epochs override, or a sweep's ablation of it, changed nothing: transformers' max_steps wins
        raise ConfigError(ignored, path)
    return cfg
