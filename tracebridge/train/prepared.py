"""Prepared SFT and DPO training sets shared by the trials of a node (``data.prepared_cache``).

``SFTTrainer`` prepares its dataset in every trial: chat template, tokenization with assistant
masks, labels, truncation or packing. On a worker role of a large bundle that is minutes of one
CPU core per trial while the GPU waits, and a sweep's trials of one role and variant (seeds,
learning rates, LoRA ranks...) prepare the very same rows the same way. With a cache folder the
first trial of a key prepares and stores ``trainer.train_dataset`` (Arrow, ``save_to_disk``); the
others load it memory-mapped and pass it with ``dataset_kwargs={"skip_prepare_dataset": True}``,
so every trial trains on what TRL prepared, byte for byte (tested: same rows, same loss curve).

The key is sha256 over the records, the tokenizer (its whole serialised form, chat template and
special tokens), the library versions and every trainer argument except those in
``NOT_DATA_ARGS`` (optimiser, schedule, logging, checkpointing: they never reach preparation), and
``fit_context`` (``data.fit_context``, which the recipes add to the arguments: fitted and unfitted sets
never share an entry, even where fitting changed no record). An argument missing from that list only
costs a cache miss. Trials of one key take a file lock
(``fcntl.flock``, released by the OS if the holder dies), so the second waits for the first's
result instead of preparing alongside it. Entries are written to a temporary folder and renamed.
``auto`` is a folder in the node's temp dir; entries unused for a week go when another is stored.
DPO too: TRL's ``DPOTrainer`` has no switch to skip preparation, so ``dpo_trainer_class`` overrides
its ``_prepare_dataset`` for the train set (the set stored is the one it returns, before the
reference log-probs, which depend on the model); if a TRL release renames that method, trials
simply prepare their own (``prepared`` stays empty).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from tracebridge.schema.canonical import library_versions

log = logging.getLogger(__name__)

# Trainer arguments that do not change the prepared dataset.
NOT_DATA_ARGS = frozenset({
    "output_dir", "seed", "data_seed", "learning_rate", "max_steps", "num_train_epochs", "per_device_train_batch_size",
    "gradient_accumulation_steps", "warmup_steps", "warmup_ratio", "weight_decay", "lr_scheduler_type", "bf16",
    "fp16", "gradient_checkpointing", "activation_checkpointing", "logging_steps", "logging_first_step", "report_to",
    "disable_tqdm", "save_strategy", "save_steps", "save_total_limit", "dataloader_num_workers",
    "dataloader_persistent_workers", "dataloader_pin_memory", "dataloader_prefetch_factor", "use_cpu",
    "dataset_num_proc", "optim", "max_grad_norm", "adam_beta1", "adam_beta2", "adam_epsilon", "use_liger_kernel",
    "neftune_noise_alpha",
    "beta", "loss_type", "precompute_ref_log_probs", "precompute_ref_batch_size",  # DPO: the loss, not the data
})
AUTO = "auto"  # a folder in this node's temp dir (per user): trials of a node share it
MAX_AGE_S = 7 * 86400  # entries unused this long are deleted when another is stored
_LIBRARIES = ("trl", "transformers", "datasets", "tokenizers")


def tokenizer_digest(tokenizer: Any) -> bytes:
    """sha256 of what decides a tokenizer's output: its serialised form, chat template, special tokens."""
    h = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    h.update(backend.to_str().encode() if backend is not None else repr(getattr(tokenizer, "get_vocab", dict)()).encode())
    h.update(str(getattr(tokenizer, "chat_template", None)).encode())
    h.update(orjson.dumps(getattr(tokenizer, "special_tokens_map", {}), option=orjson.OPT_SORT_KEYS,
                          default=str))
    h.update(f"{type(tokenizer).__name__}:{getattr(tokenizer, 'padding_side', '')}:"
             f"{getattr(tokenizer, 'truncation_side', '')}".encode())
    return h.digest()


def prepare_key(recipe: str, records: list[dict[str, Any]], tokenizer: Any, args: dict[str, Any]) -> str:
    """The cache key of preparing ``records`` with ``tokenizer`` and trainer ``args``."""
    h = hashlib.sha256(recipe.encode() + b"\0" + library_versions(_LIBRARIES))
    h.update(tokenizer_digest(tokenizer))
    data_args = {k: v for k, v in args.items() if k not in NOT_DATA_ARGS}
    h.update(orjson.dumps(data_args, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=repr))
    h.update(orjson.dumps(records, option=orjson.OPT_NON_STR_KEYS, default=repr))
    return h.hexdigest()


def prepared_cache_problem(value: str | None) -> str | None:
    """Why ``data.prepared_cache`` cannot be a folder (it, or the nearest folder above it that exists, is a
    file), asked before any trial starts; None when it can, is ``auto`` or is off. Found when the first
    trial prepared its rows, it failed every trial one by one (exit 1) instead of being a config error."""
    if not value or value == AUTO:
        return None
    path = Path(os.path.expanduser(value))
    for p in (path, *path.parents):
        if p.exists():
            return None if p.is_dir() else (f"data.prepared_cache={value}: {p} is a file, not a folder; give a "
                                            "folder, auto (the node's temp dir) or null (no shared preparation)")
    return None


class PreparedCache:
    """Prepared datasets by key under ``root`` (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(os.path.join(tempfile.gettempdir(), f"tracebridge-prepared-{os.getuid()}")
                         if str(root) == AUTO else os.path.expanduser(root))
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"data.prepared_cache={root}: cannot create the folder: {exc.strerror or exc}") from exc

    @contextlib.contextmanager
    def claim(self, key: str) -> Iterator[Claim]:
        """Take ``key``'s lock and look the key up: a ``Claim`` (released at the end of the block at
        the latest; at once when the set is there, and as soon as the caller stores it)."""
        fh = open(self.root / f"{key}.lock", "a+b")  # noqa: SIM115 - closed by the claim
        fcntl.flock(fh, fcntl.LOCK_EX)
        claim = Claim(self, key, fh)
        try:
            yield claim
        finally:
            claim.release()

    def _load(self, key: str) -> Any:
        path = self.root / key
        if not path.is_dir():
            return None
        from datasets import load_from_disk

        try:
            ds = load_from_disk(str(path))
            os.utime(path)  # last use, for eviction
            return ds
        except Exception as exc:  # noqa: BLE001 - a damaged entry is prepared again, never trusted
            log.warning("prepared dataset %s does not load (%s): preparing it again", path, exc)
            shutil.rmtree(path, ignore_errors=True)
            return None

    def store(self, key: str, dataset: Any) -> bool:
        """Save ``dataset`` under ``key`` (temporary folder, then a rename); False when it could not."""
        tmp = self.root / f".{key}.{os.getpid()}.tmp"
        try:
            dataset.save_to_disk(str(tmp))
            os.replace(tmp, self.root / key)
        except OSError as exc:  # a full disk costs the next trial a preparation, never this one
            log.warning("prepared dataset %s not stored: %s", key, exc)
            shutil.rmtree(tmp, ignore_errors=True)
            return False
        self.evict()
        return True

    def evict(self, max_age_s: float = MAX_AGE_S) -> list[str]:
        """Delete entries (and stale temporary folders) no trial has used for ``max_age_s``."""
        now, gone = time.time(), []
        for path in self.root.iterdir():
            with contextlib.suppress(OSError):  # another trial may remove it first
                if not (path.is_dir() and now - path.stat().st_mtime > max_age_s):
                    continue
                shutil.rmtree(path, ignore_errors=True)
                (self.root / f"{path.name}.lock").unlink(missing_ok=True)
                gone.append(path.name)
        return gone


class Claim:
    """One trial's hold on a key: ``ready`` (the stored set, or None: this trial prepares it, and
    the others of the key wait for ``store``)."""

    def __init__(self, cache: PreparedCache, key: str, fh: Any) -> None:
        self.cache, self.key, self._fh = cache, key, fh
        self.stored: bool | None = None  # None: not stored yet
        self.ready = cache._load(key)
        if self.ready is not None:
            self.release()

    def store(self, dataset: Any) -> bool:
        """Store the prepared ``dataset`` (once) and let the waiting trials in."""
        if self.stored is None:
            self.stored = self.cache.store(self.key, dataset)
            self.release()
        return self.stored

    def release(self) -> None:
        """Unlock and close the key's lock file, letting waiting trials in; later calls do
        nothing."""
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


def with_prepared(cache_dir: str | None, recipe: str, records: list[dict[str, Any]], tokenizer: Any,
                  args: dict[str, Any], build: Callable[[Any, Callable[[Any], bool] | None], Any],
                  prepared_of: Callable[[Any], Any]) -> tuple[Any, str]:
    """A trainer from ``build(ready, store)`` and ``"loaded"``, ``"stored"`` or ``""`` (no cache, or
    nothing stored). ``ready`` is the stored prepared set, or None to prepare; ``build`` may call
    ``store(prepared)`` as soon as it has the set (before model-dependent work such as reference
    log-probs, so that the trials waiting for it start), else the set ``prepared_of(trainer)``
    (None when the trainer cannot say) is stored after it."""
    if cache_dir is None:
        return build(None, None), ""
    cache = PreparedCache(cache_dir)
    with cache.claim(prepare_key(recipe, records, tokenizer, args)) as claim:
        trainer = build(claim.ready, claim.store if claim.ready is None else None)
        done = prepared_of(trainer)
        if claim.ready is not None:
            return trainer, "loaded" if done is claim.ready else ""
        return trainer, "stored" if done is not None and claim.store(done) else ""


def dpo_trainer_class() -> type:
    """``trl.DPOTrainer`` that takes a prepared train set (``ready=``), hands the one it prepares to
    ``on_prepared`` and keeps the one it used (``prepared_train``)."""
    from trl import DPOTrainer

    class PreparedDPOTrainer(DPOTrainer):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, ready: Any = None, on_prepared: Callable[[Any], Any] | None = None,
                     **kwargs: Any) -> None:
            self._ready, self._on_prepared, self.prepared_train = ready, on_prepared, None
            super().__init__(*args, **kwargs)

        def _prepare_dataset(self, dataset: Any, processing_class: Any, args: Any, dataset_name: str) -> Any:
            if dataset_name != "train":
                return super()._prepare_dataset(dataset, processing_class, args, dataset_name)
            out = self._ready
            if out is None:
                out = super()._prepare_dataset(dataset, processing_class, args, dataset_name)
                if self._on_prepared is not None:
                    self._on_prepared(out)  # before the reference log-probs: waiting trials start now
            self.prepared_train = out
            return out

    return PreparedDPOTrainer
