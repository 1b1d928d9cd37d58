"""GPU smoke check: SFT then DPO for one role on a random-init model (Qwen2.5-0.5B shape by
default, bf16 on CUDA) for ~50 steps each, printing tokens/s and peak memory.

Runs without network and without a bundle: rows are synthesised in the role's format
(``tracebridge.schema.roles``) at a target length. Needs torch, transformers, trl, datasets,
pydantic, orjson, pyyaml (``scripts/gpu_check.sh`` installs the carried wheels); omegaconf to check the
model YAML's types as every command does (without it, unknown keys are still refused).

    python -m tracebridge.train.gpu_check --model configs/model/qwen2.5-0.5b.yaml --steps 50
    python -m tracebridge.train.gpu_check --model configs/model/tiny.yaml --steps 3 --rows 16 --seq-len 128  # CPU
    python -m tracebridge.train.gpu_check --model configs/model/qwen2.5-0.5b.yaml num_hidden_layers=12  # a model key

Its flags are parsed with argparse, not typer as the ``tracebridge`` commands are: the device machine
has neither typer nor its click and rich (only the wheels ``scripts/gpu_check.sh`` names travel, and no
Ray, omegaconf or the CLI package is needed there). The parser keeps the commands' conventions instead:
model keys as ``key=value``, ``error: ...`` on stderr, exit 2 for a bad flag or config before any
work (under ``--json`` also ``{"ok": false, "error", "exit_code"}`` on stdout), exit 1 when the check fails.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def synth_rows(role: str, n: int, target_chars: int, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """``n`` SFT records and ``n`` preference records of ``role``, each prompt ~``target_chars`` long."""
    from tracebridge.schema import roles

    rng = random.Random(seed)
    words = "read file count lines sum column table query result error timeout found value step plan".split()  # noqa: SIM905 - one string reads best
    sft, pref = [], []
    for i in range(n):
        ev, text = [], ""
        while len(text) < target_chars:
            ev.append({"tool": rng.choice(words), "ok": rng.random() > 0.3,
                       "output": " ".join(rng.choices(words, k=12)), "n": rng.randint(0, 10 ** 6)})
            text = roles.verifier_user_text({"plan_progress": {"completed": i % 4, "total": 4}, "evidence": ev})
        verdict = roles.VERDICTS[i % 3]
        wrong = roles.VERDICTS[(i + 1) % 3]
        reply = roles.verifier_reply_text({"verdict": verdict, "feedback": " ".join(rng.choices(words, k=8))})
        bad = roles.verifier_reply_text({"verdict": wrong, "feedback": " ".join(rng.choices(words, k=8))})
        sft.append({"messages": roles.messages(role, text, reply), "tools": None})
        pref.append({"prompt": roles.messages(role, text), "chosen": [{"role": "assistant", "content": reply}],
                     "rejected": [{"role": "assistant", "content": bad}], "tools": None})
    return sft, pref


def load_model_config(path: str, overrides: list[str] | tuple[str, ...] = ()) -> Any:
    """A ``ModelConfig`` from YAML and ``key=value`` overrides through the typed schema, as every command
    reads one (``tracebridge.config.load_config``): an unknown key names the closest valid one, a value of
    the wrong type the type its key takes, then ``validate()``; every problem at once, exit 2.

    Where omegaconf is not installed (a bare GPU machine), the YAML is read with pyyaml: unknown keys
    are still refused by name; the types are then checked only as far as ``validate()`` goes.
    """
    try:
        from tracebridge.config import ConfigError, load_config
    except ImportError:  # no omegaconf here
        return _load_model_config_plain(path, overrides)
    from tracebridge.train.model_config import ModelConfig

    try:
        return load_config(ModelConfig, path, overrides)
    except ConfigError as exc:
        _refuse(str(exc))


EXIT_CODES = """exit codes:
  0  the check passed: SFT loss fell, both phases ran every step, the prepared set loaded
  1  the check ran and failed (the JSON summary's "ok" is false)
  2  a bad flag, model key or --model YAML, or an --out that cannot be a folder: nothing was run"""


class Refused(SystemExit):
    """A usage or config error found before any work: exit 2 with ``text`` (``error: ...`` on stderr)."""

    def __init__(self, text: str) -> None:
        super().__init__(2)
        self.text = text


def _refuse(text: str) -> None:
    """Print a config problem and exit 2 (a config error, before any work)."""
    print(f"gpu_check: error: {text}", file=sys.stderr)
    raise Refused(text)


class _Parser(argparse.ArgumentParser):
    """argparse that refuses a bad flag as the commands do: ``error:`` naming it, where to find help, exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(self.format_usage().rstrip(), file=sys.stderr)
        print(f"Try '{self.prog} --help' for help.", file=sys.stderr)
        _refuse(message)


def number_arg(cast: Any, low: float, strict: bool = False) -> Any:
    """An argparse type: a ``cast`` number at least ``low`` (above it when ``strict``), else a message
    naming the bound (argparse puts the flag in front)."""
    def parse(text: str) -> Any:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {'a whole number' if cast is int else 'a number'}") from None
        if math.isnan(value) or (value <= low if strict else value < low):
            raise argparse.ArgumentTypeError(f"{text}: must be {'>' if strict else '>='} {low}")
        return value
    return parse


def make_parser() -> argparse.ArgumentParser:
    """The check's flags (the module docstring and the exit codes are its help)."""
    ap = _Parser(prog="scripts/gpu_check.sh", description=__doc__, epilog=EXIT_CODES,
                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="configs/model/qwen2.5-0.5b.yaml", help="a configs/model YAML")
    ap.add_argument("--role", default="verifier", choices=["verifier"], help="role whose format the rows use")
    ap.add_argument("--steps", type=number_arg(int, 1), default=50, help="optimizer steps per phase (>= 1)")
    ap.add_argument("--batch-size", type=number_arg(int, 1), default=8, help="rows (SFT) or pairs (DPO) per step")
    ap.add_argument("--seq-len", type=number_arg(int, 16), default=1024, help="max tokens per row (>= 16)")
    ap.add_argument("--rows", type=number_arg(int, 1), default=512, help="synthetic rows per phase")
    ap.add_argument("--chars", type=number_arg(int, 1), default=2000, help="target prompt characters per row")
    ap.add_argument("--lr", type=number_arg(float, 0, strict=True), default=1e-4, help="SFT learning rate, > 0 (DPO uses lr/10)")
    ap.add_argument("--out", default=None, help="work folder (default: a temp dir)")
    ap.add_argument("--json", action="store_true", help="print only the JSON summary (errors too, as "
                    '{"ok": false, "error", "exit_code"})')
    ap.add_argument("overrides", nargs="*", metavar="key=value", help="model config keys (num_hidden_layers=12)")
    return ap


def _load_model_config_plain(path: str, overrides: list[str] | tuple[str, ...]) -> Any:
    """``load_model_config`` without omegaconf: pyyaml, the schema's field names, ``validate()``."""
    import dataclasses
    import difflib

    import yaml

    from tracebridge.train.model_config import ModelConfig

    if overrides:
        _refuse(f"key=value overrides {list(overrides)} need omegaconf, which is not installed here")
    values = yaml.safe_load(Path(path).read_text()) or {}
    known = [f.name for f in dataclasses.fields(ModelConfig)]
    bad = [f"{k}: unknown key" + "".join(f"; did you mean {m!r}?" for m in difflib.get_close_matches(str(k), known, 1))
           for k in values if k not in known]
    defaults = ModelConfig()
    for k, v in values.items():  # numbers and switches, by the type of the schema's default
        want = type(getattr(defaults, k, None))
        if want in (int, float, bool) and v is not None and (
                isinstance(v, bool) != (want is bool) or not isinstance(v, (int, float) if want is float else want)):
            bad.append(f"{k}={v}: expected {({bool: 'true or false', int: 'an integer'}).get(want, 'a number')}")
    cfg = ModelConfig(**values) if not bad else None
    bad += cfg.validate() if cfg else []
    if bad:
        _refuse("\n  - ".join([f"invalid config {path} ({len(bad)} problem(s)):", *bad]))
    return cfg


class StepTimer:
    """Times steps after a warm-up, for a steady-state rate."""

    def __init__(self, warmup: int) -> None:
        from transformers import TrainerCallback

        self.warmup = warmup
        self.t: dict[int, float] = {}
        timer = self

        class _CB(TrainerCallback):
            def on_step_end(self, args, state, control, **kw):
                import torch

                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                timer.t[state.global_step] = time.perf_counter()

        self.callback = _CB()

    def steady_s_per_step(self) -> float | None:
        """Mean seconds per step after the warm-up, or None when too few steps were timed."""
        steps = sorted(self.t)
        if len(steps) <= self.warmup + 1:
            return None
        a, b = steps[self.warmup], steps[-1]
        return (self.t[b] - self.t[a]) / (b - a)


def run_phase(name: str, fn: Any, model: Any, tok: Any, records: list[dict], rc: Any, out: Path) -> tuple[Any, dict]:
    """Run one training phase (``run_sft`` or ``run_dpo``) under a step timer; summarise it.

    Returns:
        The trained model and the phase's summary row: steps, first and last loss, tokens/s (overall
        and steady-state), peak memory in GiB, and the runtimes.
    """
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    timer = StepTimer(warmup=min(5, max(rc.max_steps // 5, 1)))
    t0 = time.perf_counter()
    model, res = fn(model, tok, records, rc, out / name, callbacks=[timer.callback])
    wall = time.perf_counter() - t0
    tokens_per_step = res.tokens / max(res.global_step, 1)
    steady = timer.steady_s_per_step()
    row = {"phase": name, "steps": res.global_step, "loss_first": res.first_loss, "loss_last": res.last_loss,
           "tokens": res.tokens, "tokens_per_s": res.tokens_per_s,
           "steady_tokens_per_s": tokens_per_step / steady if steady else None,
           "peak_memory_gib": res.peak_memory_bytes / 2 ** 30, "train_runtime_s": res.train_runtime_s,
           "wall_s": wall}
    log.info("%s: %s", name, row)
    return model, row


def check_prepared(model: Any, tok: Any, records: list[dict], args: Any, out: Path) -> dict[str, Any]:
    """gpu.yaml's shared preparation on this device: two 2-step SFT trials of one key from the same
    weights with padding-free packing, the first storing the prepared set, the second loading it;
    their first losses must agree (the same batch through the same weights)."""
    import copy

    from tracebridge.train.config import SFTRecipeConfig
    from tracebridge.train.sft import run_sft

    rc = SFTRecipeConfig(lr=args.lr, max_steps=2, batch_size=args.batch_size, max_length=args.seq_len,
                         logging_steps=1, save_steps=0,
                         throughput={"padding_free": True, "micro_batch_tokens": 4 * args.seq_len})
    runs = [run_sft(copy.deepcopy(model), tok, records, rc, out / f"prepared{i}", prepared_cache=str(out / "prepared"))[1]
            for i in range(2)]
    losses = [r.first_loss for r in runs]
    row = {"trials": [r.prepared for r in runs], "first_losses": losses,
           "ok": [r.prepared for r in runs] == ["stored", "loaded"] and abs(losses[0] - losses[1]) <= 1e-3 * max(
               1.0, abs(losses[0]))}
    log.info("prepared: %s", row)
    return row


def _inputs(argv: list[str]) -> tuple[Any, Any, Path]:
    """The flags, the model config and the work folder, or exit 2 (``Refused``) before any work; under
    ``--json`` the error is also the one JSON document on stdout."""
    try:
        args = make_parser().parse_args(argv)
        logging.basicConfig(level=logging.WARNING if args.json else logging.INFO, format="%(message)s")
        cfg = load_model_config(args.model, args.overrides)  # before the heavy imports: a bad config fails at once
        for p in (Path(args.out), *Path(args.out).parents) if args.out else ():
            if p.exists() and not p.is_dir():
                _refuse(f"--out {args.out}: {p} is a file, not a folder")
    except Refused as exc:
        if "--json" in argv:
            print(json.dumps({"ok": False, "error": exc.text, "exit_code": exc.code}))
        raise
    return args, cfg, Path(args.out or tempfile.mkdtemp(prefix="gpu_check_"))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the smoke check (SFT, then DPO, then the prepared-set check) and print a JSON summary.

    Args:
        argv: command-line arguments (None = ``sys.argv``).

    Returns:
        The summary; ``ok`` is True when the SFT loss fell, both phases ran every step and the
        prepared-set check passed.
    """
    args, cfg, out = _inputs(sys.argv[1:] if argv is None else list(argv))

    import datasets
    import torch

    from tracebridge.train.config import DPORecipeConfig, SFTRecipeConfig
    from tracebridge.train.dpo import run_dpo
    from tracebridge.train.models import build_model_and_tokenizer
    from tracebridge.train.sft import run_sft

    datasets.disable_progress_bars()
    t0 = time.perf_counter()
    model, tok = build_model_and_tokenizer(cfg)
    if torch.cuda.is_available():
        model = model.to("cuda")
    build_s = time.perf_counter() - t0
    sft_rows, pref_rows = synth_rows(args.role, args.rows, args.chars)
    common = {"max_steps": args.steps, "batch_size": args.batch_size, "max_length": args.seq_len,
              "logging_steps": 5, "save_steps": 0, "warmup_ratio": 0.1}
    model, sft = run_phase("sft", run_sft, model, tok, sft_rows, SFTRecipeConfig(lr=args.lr, **common), out)
    model, dpo = run_phase("dpo", run_dpo, model, tok, pref_rows, DPORecipeConfig(lr=args.lr / 10, **common), out)
    prepared = check_prepared(model, tok, sft_rows, args, out)
    summary = {
        "model": cfg.name, "parameters_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "dtype": str(next(model.parameters()).dtype), "device": torch.cuda.get_device_name(0)
        if torch.cuda.is_available() else "cpu", "torch": torch.__version__, "build_s": build_s,
        "batch_size": args.batch_size, "seq_len": args.seq_len, "sft": sft, "dpo": dpo, "prepared": prepared,
        "ok": bool(sft["loss_last"] < sft["loss_first"] and sft["steps"] == args.steps == dpo["steps"]
                   and prepared["ok"]),
    }
    if not args.json:
        for r in (sft, dpo):
            print(f"{r['phase'].upper()}: {r['steps']} steps  loss {r['loss_first']:.3f} -> {r['loss_last']:.3f}  "
                  f"{r['tokens_per_s']:.0f} tokens/s (steady {r['steady_tokens_per_s'] or 0:.0f})  "
                  f"peak memory {r['peak_memory_gib']:.2f} GiB")
    print(json.dumps(summary, default=str))
    return summary


if __name__ == "__main__":
    raise SystemExit(0 if main()["ok"] else 1)
