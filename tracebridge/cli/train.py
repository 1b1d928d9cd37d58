"""Training commands: ``tracebridge train`` (one role: trials + report) and ``tracebridge eval``
(a trained model on a bundle's test split); ``tracebridge report`` is in ``tracebridge.cli.report``.
Heavy imports live inside the functions."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from tracebridge.cli.app import app, config_errors, fail, out_dir_problem, print_json
from tracebridge.cli.train_notes import eval_rows, headline, warn_eval_quarantine, warn_trial_notes

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable summary.")]


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()


def _csv(option: str, value: str | None, example: str, cast: Any = str) -> list[Any]:
    """A comma list option (``--variants``, ``--seeds``) as ``cast`` values; an empty item, an item ``cast``
    refuses or one given twice (its trial would run twice into one folder and be pooled twice) exits 2."""
    raw = [v.strip() for v in value.split(",")] if value is not None else []  # '': an empty item, not the default
    try:
        if not all(raw):
            raise ValueError("an empty item")
        items = [cast(v) for v in raw]
    except ValueError:
        fail(f"{option} {value}: use a comma list of {'whole numbers' if cast is int else 'names'}, e.g. {option} {example}")
    if twice := sorted({str(v) for v in items if items.count(v) > 1}):
        fail(f"{option} {value}: {', '.join(twice)} given twice; each trial runs once")
    return items


def _conflicts(ov: list[str], variants: str | None, seeds: str | None) -> list[str]:
    """Overrides that would be dropped without a word: a key given twice with different values (the last one won),
    and ``variant=``/``seed=`` beside ``--variants``/``--seeds`` (the option won)."""
    seen: dict[str, list[str]] = {}
    for o in ov:
        key, _, value = o.partition("=")
        seen.setdefault(key.strip(), []).append(value.strip())
    out = [f"{k}: given {len(v)} times ({', '.join(v)}); give it once" for k, v in seen.items() if len(set(v)) > 1]
    out += [f"{k}={seen[k][-1]} and {opt} {given}: say it once (the option names every trial's {k})"
            for k, opt, given in (("variant", "--variants", variants), ("seed", "--seeds", seeds))
            if given is not None and k in seen]
    return out


def _check_before_training(config: Path, ov: list[str], model: Path | None, vs: list[str], ss: list[int],
                           resume: Path | None, out: Path) -> None:
    """Every problem of the trials to come, before the first one trains: each variant × seed config
    (``--variants baseline,typo`` must not fail after baseline trained), its ``model.path``, ``--resume``
    (a finished trial has nothing left to train) and ``--out`` (the bundle is checked by each trial
    before it trains)."""
    from tracebridge.config import ConfigError, to_dict
    from tracebridge.train.config import load_train_config
    from tracebridge.train.model_config import model_path_problem
    from tracebridge.train.prepared import prepared_cache_problem
    from tracebridge.train.resume_config import nothing_left_problem, resume_config_problem
    from tracebridge.train.trial import resume_problem

    probs: list[str] = [why] if (why := out_dir_problem(out)) else []
    for v in vs:
        for s in ss:
            try:
                cfg = load_train_config(str(config), [*ov, f"variant={v}", f"seed={s}"], str(model) if model else None)
            except ConfigError as exc:
                probs += [p for p in exc.problems if p not in probs]
                continue
            for why in (model_path_problem(cfg.model), prepared_cache_problem(cfg.data.prepared_cache)):
                probs += [why] if why and why not in probs else []
            # --resume is one trial: its folder's config is compared with this one
            if resume and (why := resume_problem(resume) or resume_config_problem(resume, to_dict(cfg))
                           or nothing_left_problem(resume, cfg)):
                probs.append(why)
    if probs:
        fail(str(ConfigError(probs, str(config))))


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="A configs/train YAML.")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key.sub=value overrides (e.g. train.lr=1e-4).")] = None,
    bundle: Annotated[Path, typer.Option(help="Export bundle folder.")] = Path("bundle"),
    out: Annotated[Path, typer.Option(help="Output folder: one sub-folder per trial, report/ on top.")] = Path("runs"),
    model: Annotated[Path | None, typer.Option(help="A configs/model YAML replacing the config's model block.")] = None,
    variants: Annotated[str | None, typer.Option(help="Comma list (default: the config's variant).")] = None,
    seeds: Annotated[str | None, typer.Option(help="Comma list (default: the config's seed).")] = None,
    resume: Annotated[Path | None, typer.Option(help="Checkpoint or earlier trial folder (one trial only).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Train and evaluate one role (each variant × seed), then write the report; exit 1 when a
    trial fails. Exit 2, before any trial, for a bad flag, config, model.path, data.prepared_cache,
    bundle or --out, or a --resume that cannot continue (another config, nothing left to train)."""
    from tracebridge.config import ConfigError, to_dict
    from tracebridge.train.config import load_train_config
    from tracebridge.train.data import BundleError
    from tracebridge.train.trial import run_trial

    _quiet_libraries()
    ov = list(overrides or [])
    if clash := _conflicts(ov, variants, seeds):
        fail(str(ConfigError(clash, str(config))), problems=clash)
    with config_errors():
        base = load_train_config(str(config), ov, str(model) if model else None)
    vs = _csv("--variants", variants, "baseline,optimized") or [base.variant]
    ss = _csv("--seeds", seeds, "0,1", int) or [base.seed]
    if resume and len(vs) * len(ss) > 1:
        fail("--resume continues one trial: give one variant and one seed")
    _check_before_training(config, ov, model, vs, ss, resume, out)
    t0, results, failed = time.time(), [], []
    for v in vs:
        for s in ss:
            spec = {"config": str(config), "model": str(model) if model else None, "overrides": ov,
                    "variant": v, "seed": s}
            try:
                r = run_trial({k: x for k, x in spec.items() if x is not None}, bundle,
                              out / f"{base.role}-{v}-s{s}", resume_from=resume)
            except (ConfigError, BundleError) as exc:
                fail(str(exc))
            except Exception as exc:  # noqa: BLE001 - a trial that crashes, however, is reported; the others still run
                failed.append({"variant": v, "seed": s, "error": f"{type(exc).__name__}: {exc}", "role": base.role,
                               "trial_dir": str(out / f"{base.role}-{v}-s{s}")})
                continue
            results.append(r)
            if not json_out:
                typer.echo(json.dumps(headline(r), default=str))
            warn_trial_notes(r, base)
    manifest = None
    if results or failed:  # the failed trials listed in it with their reasons, even when none finished
        from tracebridge.report import write_report

        manifest = write_report(results, out / "report", config=to_dict(base), wall_s=time.time() - t0,
                                n_boot=base.eval.n_boot, ci=base.eval.ci, title=f"TraceBridge: {base.role}",
                                failed=failed)
    summary = {"trials": [headline(r) for r in results], "failed": failed,
               "report": str(out / "report" / "report.html") if manifest else None,
               "winners": (manifest or {}).get("winners")}
    if json_out:
        print_json(summary)
    else:
        typer.echo(f"report: {summary['report'] or 'none (no trial finished)'}  winners: {summary['winners']}  "
                   f"failed trials: {len(failed)}")
        for f in failed:  # the count alone leaves the user no way to see why
            typer.echo(f"failed trial {base.role}-{f['variant']}-s{f['seed']}: {f['error']}", err=True)
    raise typer.Exit(1 if failed else 0)


def _trial_file(checkpoint: Path) -> Path | None:
    """The ``trial.json`` of the trial a checkpoint folder belongs to (``<trial>/sft/final``), if any."""
    return next((p / "trial.json" for p in checkpoint.parents[:3] if (p / "trial.json").is_file()), None)


def _trial_differences(checkpoint: Path, cfg: Any) -> dict[str, Any]:
    """Where this evaluation's settings differ from those of the checkpoint's trial, said on stderr with
    the overrides that reproduce the trial's numbers; ``{}`` without a readable ``trial.json``."""
    from tracebridge.eval.settings import trial_differences

    trial = _trial_file(checkpoint)
    try:
        config = json.loads(trial.read_text())["config"] if trial else None
    except (OSError, ValueError, KeyError, TypeError):
        config = None
    if not isinstance(config, dict):
        return {}
    diffs, fix = trial_differences(config, cfg)
    if diffs:
        said = "; ".join(f"{k}: trial {v['trial']}, this run {v['this run']}" for k, v in diffs.items())
        typer.echo(f"note: {checkpoint}: these settings differ from the trial's ({trial}), and so will the numbers: "
                   f"{said}" + (f"; to evaluate as the trial did, pass {' '.join(fix)}" if fix else ""), err=True)
    return diffs


def _reference_model(checkpoint: Path, cfg: Any) -> Any:
    """The model a DPO checkpoint started from, as the trial's reference for ``reward_margin``: for a
    trial folder's ``<trial>/dpo/...``, ``<trial>/sft/final``; for a sweep's final checkpoint
    ``<checkpoint>/model``, the ``ref_model`` beside it. None for any other checkpoint or when that
    folder is not a model."""
    from dataclasses import replace

    from tracebridge.train.models import build_model_and_tokenizer

    if checkpoint.name == "model" and (checkpoint.parent / "ref_model").is_dir():
        sft = checkpoint.parent / "ref_model"
    elif checkpoint.parent.name == "dpo":
        sft = checkpoint.parent.parent / "sft" / "final"
    else:
        return None
    if _checkpoint_problem(sft, cfg.role):
        return None
    return build_model_and_tokenizer(replace(cfg.model, init="pretrained", path=str(sft), chat_template="native"))[0]


def _checkpoint_problem(checkpoint: Path, role: str) -> str | None:
    """Why ``checkpoint`` is not a saved model of ``role`` (None when it looks like one)."""
    from tracebridge.train.model_config import chat_template_problem, model_folder_problem

    if why := model_folder_problem(checkpoint) or chat_template_problem(checkpoint):
        return f"{checkpoint}: {why}; give a trial's checkpoint_dir"
    trial = _trial_file(checkpoint)
    try:
        trained = json.loads(trial.read_text())["result"]["role"] if trial else role
    except (OSError, ValueError, KeyError, TypeError):
        trained = role
    if trained != role:  # a verifier scored as a planner gives numbers that mean nothing
        return f"{checkpoint}: trained as role {trained} ({trial}), evaluated as {role}; pass role={trained}"
    return None


def _eval_inputs(checkpoint: Path, config: Path, overrides: list[str], bundle: Path, out: Path | None,
                 min_metric: list[str], max_metric: list[str]) -> tuple[Any, Any, dict[str, float], dict[str, float]]:
    """The config, the role's bundle data, the ``--min`` floors and ``--max`` ceilings of ``eval``, or exit 2 listing
    every problem before a model loads: the config's first (``invalid config``), then the others
    each under a heading that says what is wrong (``checkpoint not usable``, ``bundle not usable``...)."""
    from tracebridge.config import problem_list
    from tracebridge.eval.bounds import parse_bounds
    from tracebridge.train.behaviour import load_policed_data
    from tracebridge.train.config import load_train_config
    from tracebridge.train.data import BundleError, verify_bundle_dir
    from tracebridge.train.trial import eval_split_problem

    with config_errors():
        cfg = load_train_config(str(config), overrides)
    floors, bad_floors = parse_bounds(min_metric, cfg.role, "--min")
    ceilings, bad_ceilings = parse_bounds(max_metric, cfg.role, "--max")
    bad_out = [problem] if out and (problem := out_dir_problem(out)) else []
    data, bad_bundle = None, []
    if not bundle.is_dir():  # read, it would be a bundle without rows: misleading
        bad_bundle.append(f"--bundle {bundle}: no such folder; give an exported bundle folder")
    else:
        try:
            if cfg.data.verify_bundle:
                verify_bundle_dir(bundle)
            data = load_policed_data(bundle, cfg.role, cfg.behaviour)[0]  # the policy the model trained under
            bad_bundle += [why] if (why := eval_split_problem(bundle, cfg, data)) else []
        except BundleError as exc:
            bad_bundle.append(str(exc))
    bad_checkpoint = _checkpoint_problem(checkpoint, cfg.role)
    problems = {"invalid --min": bad_floors, "invalid --max": bad_ceilings, "checkpoint not usable": [bad_checkpoint] if bad_checkpoint else [],
                "--out not usable": bad_out, "bundle not usable": bad_bundle}
    if any(problems.values()):
        fail("\n".join(problem_list(head, probs) for head, probs in problems.items() if probs))
    return cfg, data, floors, ceilings


def _print_metrics(metrics: dict[str, Any]) -> None:
    """One line per metric with its interval; a metric with no item to score says so, not ``nan``
    (e.g. worker error recurrence on rows without a failed tool call)."""
    import math

    for k, v in sorted(metrics.items()):
        if k.endswith(("_lo", "_hi")):
            continue
        if v is None or math.isnan(v):
            typer.echo(f"{k:40s} n/a     (no eval item has this metric)")
        elif k + "_lo" not in metrics:  # a count (eval_rows, eval_prompts_fitted): no interval
            typer.echo(f"{k:40s} {int(v) if float(v).is_integer() else round(v, 4)}")
        else:
            typer.echo(f"{k:40s} {v:.4f}  [{metrics.get(k + '_lo', math.nan):.4f}, "
                       f"{metrics.get(k + '_hi', math.nan):.4f}]")


@app.command("eval")
def eval_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="A trained model folder (a trial's checkpoint_dir).")],
    config: Annotated[Path, typer.Argument(help="The configs/train YAML it was trained with.")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides (role=..., eval.*).")] = None,
    bundle: Annotated[Path, typer.Option(help="Export bundle folder.")] = Path("bundle"),
    out: Annotated[Path | None, typer.Option(help="Write eval_items.json and metrics.json here.")] = None,
    min_metric: Annotated[list[str] | None, typer.Option("--min", help="metric=value floor (higher is better); "
                                                         "exit 1 below it.")] = None,
    max_metric: Annotated[list[str] | None, typer.Option("--max", help="metric=value ceiling (lower is better, "
                                                         "e.g. error_recurrence); exit 1 above it.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Evaluate a trained role model offline on the bundle's eval split (and closed loop when
    ``eval.closed_loop.enabled``); exit 1 when a ``--min`` floor or ``--max`` ceiling is missed; exit 2,
    before the model loads, for a bad config, bound, checkpoint (not a saved model, no chat template,
    another role's), --out or bundle."""
    from dataclasses import replace

    from tracebridge.eval.bounds import missed
    from tracebridge.eval.offline import evaluate_split
    from tracebridge.eval.settings import fit_note
    from tracebridge.train.models import build_model_and_tokenizer

    _quiet_libraries()
    cfg, data, floors, ceilings = _eval_inputs(checkpoint, config, list(overrides or []), bundle, out,
                                               list(min_metric or []), list(max_metric or []))
    differs = _trial_differences(checkpoint, cfg)
    import torch

    torch.set_num_threads(cfg.threads)
    try:
        model, tok = build_model_and_tokenizer(replace(cfg.model, init="pretrained", path=str(checkpoint),
                                                       chat_template="native"))
    except Exception as exc:  # noqa: BLE001  a broken folder raises whatever transformers hits first
        fail(f"checkpoint not usable: {checkpoint}: cannot load the model "
             f"({type(exc).__name__}: {str(exc).splitlines()[0]})")
    # the rows and prompts a trial evaluates, and its reference model (a DPO checkpoint's reward margin)
    res, metrics = evaluate_split(model, tok, cfg, data, _reference_model(checkpoint, cfg))
    if cfg.eval.closed_loop.enabled:
        from tracebridge.eval.closed_loop import evaluate_closed_loop

        metrics.update(evaluate_closed_loop(model, tok, cfg).flat())
    if out:
        from tracebridge.report.results import _clean

        out.mkdir(parents=True, exist_ok=True)
        (out / "eval_items.json").write_text(json.dumps({"role": cfg.role, "item_ids": res.item_ids,
                                                         "items": res.items, "extra": res.extra}))
        # strict JSON: a metric with no item to score is null, not NaN (jq and browsers reject NaN)
        (out / "metrics.json").write_text(json.dumps(_clean(metrics), indent=2, sort_keys=True))
    # a metric this run did not measure (cl_* without the closed loop, no item to score) misses its bound
    below, above, unmeasured = missed(metrics, floors, ceilings)
    if json_out:
        from tracebridge.report.results import _clean

        print_json(_clean({"metrics": metrics, "extra": res.extra, "below_floor": below, "above_ceiling": above,
                           "not_measured": unmeasured, "passed": not (below or above), "data": eval_rows(data),
                           **({"differs_from_trial": differs} if differs else {})}))
    else:
        _print_metrics(metrics)
        warn_eval_quarantine(bundle, data)
        note = fit_note(str(checkpoint), res.extra.get("fit_context"), cfg.data.fit_context)
        if note:
            typer.echo(note, err=True)
        for what, bad in (("below floor", below), ("above ceiling", above)):
            if bad:
                typer.echo(f"{what}: {bad}", err=True)
        if unmeasured:
            typer.echo(f"not measured (missing their bound): {', '.join(unmeasured)}", err=True)
    raise typer.Exit(1 if below or above else 0)
