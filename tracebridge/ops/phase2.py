"""Phase 2: ablation report over the fixed replay set, naming a winner policy, reproducible.

Each policy (a training variant plus overrides: recipe and data weighting, and the behaviour
policy ``behaviour.*`` of ``tracebridge.train.behaviour``, i.e. the prompt, tool schemas and
response form the model is trained and evaluated under) is trained and evaluated on the same
bundle with the same seeds (``tracebridge.train.trial.run_trial``, in process, one torch thread);
every policy's trial config is resolved and checked before the first one trains. Policies
are ranked by the role's primary metric pooled over seeds; the leader is the **winner** only when
its paired difference against the runner-up (same test items, same seeds) has an interval above
zero and no guarded metric regresses (``tracebridge.eval.stats.decide_winner``).

The report folder holds ``report.json``, ``report.md`` (both name each policy's variant,
behaviour and other overrides) and ``manifest.json``. The manifest stamps
the resolved phase-2 config, the bundle (id and manifest sha256), the code version, the seeds,
every trial's config hash and ``numbers_sha256``: the hash of every number the report gives
(metrics, intervals, losses, the winner). Re-running from the manifest (``reproduce``) trains
again from scratch and must give the same ``numbers_sha256`` on CPU.

Two runs into one ``out_dir`` never overlap (a cron and a manual run both trained and both wrote): a run holds
``<out_dir>/.phase2.lock`` (``PHASE2_LOCK``, a kernel file lock a killed holder lets go, with a holder note:
``tracebridge.ops.locks``) from after its checks to its manifest; a second one raises ``Phase2Locked`` naming
the lock and the holder (exit 3 in the CLI), having trained and written nothing.

The trials train in ``<out_dir>/.work-<stamp>/`` (model weights: regenerable, so retention removes
those of reports older than ``shadow.retention.keep_phase2``). While a run goes, that folder's
``uses.json`` names its bundle and ``.running.lock`` is held (``hold_work``): retention pins the
bundle and keeps the folder, even when it was given another config (``phase2.bundle`` set only here).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock

from tracebridge.config import config_hash, load_config, to_dict
from tracebridge.ops.artifacts import git_sha, new_bundle_dir, sha256_file, write_manifest
from tracebridge.ops.config import Phase2Config, PolicySpec
from tracebridge.ops.locks import run_lock
from tracebridge.ops.retention_sources import RUN_LOCK, USES, WORK_PREFIX
from tracebridge.schema.canonical import sha256_json, utc_now

log = logging.getLogger(__name__)
PHASE2_LOCK = ".phase2.lock"  # in phase2.out_dir: held by a run from after its checks to its manifest
VOLATILE = ("wall_s", "train/tokens_per_s", "train/peak_memory_bytes", "trial_dir", "eval_items_path",
            "checkpoint_dir", "ref_checkpoint_dir", "loss_curve", "sft/prepared", "resources", "started_at", "finished_at")


class Phase2Locked(RuntimeError):
    """Another phase2-report holds ``<out_dir>/.phase2.lock``."""


@contextmanager
def hold_run(out_root: Path) -> Iterator[Path]:
    """Hold ``<out_root>/.phase2.lock`` for the block (yield its path), at once or not at all.

    Raises:
        Phase2Locked: another run into ``out_root`` holds it (its pid and command named); nothing done.
    """
    out_root.mkdir(parents=True, exist_ok=True)
    lock = out_root / PHASE2_LOCK
    with run_lock(lock, "another phase2-report is running", 0, Phase2Locked,
                  message=f"another phase2-report holds {lock}; try again"):
        yield lock


@contextmanager
def hold_work(work: Path, bundle: Path, bundle_id: Any) -> Iterator[Path]:
    """The run's trial folder, held for the block: ``uses.json`` names the bundle the run reads and
    ``.running.lock`` is locked while it runs, so retention (``tracebridge.ops.retention_sources``)
    pins the bundle and leaves the folder alone, whatever config the prune was given."""
    work.mkdir(parents=True, exist_ok=True)
    (work / USES).write_text(json.dumps({"bundle": str(bundle), "bundle_path": os.path.realpath(bundle),
                                         "bundle_id": bundle_id, "started_at": utc_now()}, indent=2))
    with FileLock(str(work / RUN_LOCK)):
        yield work


def latest_replay_bundle(work_dir: str | Path) -> Path | None:
    """The newest bundle of the shadow cycle's replay set, if any."""
    root = Path(work_dir) / "replay" / "bundles"
    cands = [p for p in root.iterdir() if (p / "manifest.json").is_file()] if root.is_dir() else []
    return max(cands, key=lambda p: p.stat().st_mtime) if cands else None


def bundle_views(bundle: Path, bman: dict[str, Any]) -> list[str]:
    """The views a bundle holds rows of: its manifest's ``views``, else (hand-made bundles) its files."""
    from tracebridge.train.data import ROLE_VIEWS, view_files

    listed = bman.get("views")
    if isinstance(listed, list):
        return sorted({v["view"] for v in listed if isinstance(v, dict) and v.get("view") and v.get("rows")})
    known = sorted({v for views in ROLE_VIEWS.values() for v in views if v})
    return [v for v in known if view_files(bundle, v)]


def check_role(role: str, bundle: Path, bman: dict[str, Any]) -> None:
    """Fail before any training when the bundle has no rows of ``role``'s SFT view.

    Raises:
        ValueError: naming the role, the views the bundle has and the ``phase2.role=`` to set.
    """
    from tracebridge.train.data import ROLE_VIEWS

    if role not in ROLE_VIEWS:
        raise ValueError(f"phase2.role={role}: unknown role; use one of {', '.join(ROLE_VIEWS)}")
    have = bundle_views(bundle, bman)
    need = ROLE_VIEWS[role][0]
    if need in have:
        return
    fits = [r for r, views in ROLE_VIEWS.items() if views[0] in have]
    fix = (f"set phase2.role={fits[0]}" if len(fits) == 1 else
           f"set phase2.role to one of {', '.join(fits)}" if fits else
           "export a bundle with training views and set phase2.bundle=...")
    raise ValueError(f"phase2.role={role}: bundle {bundle} has no {need} rows (its views: "
                     f"{', '.join(have) or 'none'}); {fix}")


def _spec(cfg: Phase2Config, pol: PolicySpec, seed: int) -> dict[str, Any]:
    return {"config": cfg.train_config, "role": cfg.role, "variant": pol.variant, "seed": seed,
            "overrides": [*cfg.overrides, *pol.overrides]}


def policy_configs(cfg: Phase2Config) -> dict[str, Any]:
    """Every policy's resolved trial config (``TrainConfig``), checked before anything trains.

    Raises:
        ConfigError: every problem of every policy, each prefixed with ``phase2.policies[NAME]``.
    """
    from tracebridge.config import ConfigError
    from tracebridge.train.config import load_train_config
    from tracebridge.train.trial import spec_overrides

    out, problems = {}, []
    for pol in cfg.policies:
        spec = _spec(cfg, pol, cfg.seeds[0] if cfg.seeds else 0)
        try:
            out[pol.name] = load_train_config(spec["config"], spec_overrides(spec))
        except ConfigError as exc:
            problems += [f"phase2.policies[{pol.name}]: {p}" for p in exc.problems]
    if problems:
        raise ConfigError(problems)
    return out


def run_policies(cfg: Phase2Config, bundle: Path, work: Path) -> list[dict[str, Any]]:
    """Train and evaluate every policy × seed; return the trial results (with policy names)."""
    from tracebridge.train.trial import run_trial

    trials = []
    for pol in cfg.policies:
        for seed in cfg.seeds:
            log.info("phase2: policy %s seed %s", pol.name, seed)
            res = run_trial(_spec(cfg, pol, seed), bundle, work / f"{pol.name}-s{seed}")
            trials.append({**res, "policy": pol.name})
    return trials


def policy_table(cfg: Phase2Config, resolved: dict[str, Any], trials: list[dict[str, Any]]) -> dict[str, Any]:
    """What each policy is: variant, behaviour (resolved ``behaviour.*`` keys, a one-line summary and
    the rows it changed in the first seed's trial, from its ``trial.json``) and its other overrides."""
    from tracebridge.train.behaviour import describe

    out = {}
    for pol in cfg.policies:
        first = next((t for t in trials if t["policy"] == pol.name), {})
        tj = Path(first.get("trial_dir", "")) / "trial.json"
        changed = json.loads(tj.read_text()).get("behaviour", {}) if tj.is_file() else {}
        out[pol.name] = {"variant": pol.variant, "behaviour": to_dict(resolved[pol.name].behaviour),
                         "behaviour_summary": describe(resolved[pol.name].behaviour),
                         "behaviour_rows_changed": changed.get("rows", 0),
                         "overrides": [o for o in pol.overrides if not o.startswith("behaviour.")]}
    return out


def _pooled(trials: list[dict[str, Any]], metric: str) -> tuple[list[float], list[float]]:
    from tracebridge.report.results import load_items

    num: list[float] = []
    den: list[float] = []
    for t in sorted(trials, key=lambda t: t["seed"]):
        items = load_items(t)["items"].get(metric)
        if items:
            num += list(items[0])
            den += list(items[1])
    return num, den


def rank_policies(cfg: Phase2Config, trials: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-policy estimates, the ranking, the paired leader-vs-runner-up test and the winner."""
    from tracebridge.eval.metrics import HIGHER_IS_BETTER
    from tracebridge.eval.stats import bootstrap, decide_winner, paired_difference
    from tracebridge.report.results import GUARDED, PRIMARY

    primary = PRIMARY[cfg.role]
    metrics = [primary, *[g for g in GUARDED[cfg.role] if not g.startswith("cl_")]]
    by_pol = {p.name: [t for t in trials if t["policy"] == p.name] for p in cfg.policies}
    pooled = {p: {m: _pooled(ts, m) for m in metrics} for p, ts in by_pol.items()}
    est = {p: {m: bootstrap(*pooled[p][m], cfg.n_boot).to_dict() for m in metrics} for p in by_pol}
    order = sorted(by_pol, key=lambda p: (-(est[p][primary]["value"] if est[p][primary]["n"] else -1e9), p))
    lead, second = order[0], order[1]
    diffs = {m: paired_difference(pooled[lead][m], pooled[second][m], cfg.n_boot)
             for m in metrics if len(pooled[lead][m][0]) == len(pooled[second][m][0])}
    if primary not in diffs:
        return {"metrics": est, "ranking": order, "winner": None,
                "winner_reason": "policies were not scored on the same items; no paired test"}
    guards = {g: diffs[g] for g in metrics[1:] if g in diffs}
    verdict = decide_winner(diffs[primary], guards, {g: HIGHER_IS_BETTER.get(g, True) for g in guards},
                            challenger=lead, incumbent=second)
    return {"metrics": est, "ranking": order, "primary": primary,
            "leader_vs_runner_up": {m: e.to_dict() for m, e in diffs.items()},
            "winner": verdict.winner if verdict.winner == lead else None, "winner_reason": verdict.reason}


def numbers_of(report: dict[str, Any]) -> dict[str, Any]:
    """Every number of the report that must reproduce (no timings, no paths)."""
    trials = [{k: v for k, v in t.items() if k not in VOLATILE} for t in report["trials"]]
    return {"ranking": report["ranking"], "metrics": report["metrics"], "winner": report["winner"],
            "leader_vs_runner_up": report.get("leader_vs_runner_up"), "trials": trials}


def to_markdown(rep: dict[str, Any]) -> str:
    """The ablation report as Markdown (``report.md``): the winner, the ranking and the policies."""
    lines = [f"# Phase 2 ablation: {rep['role']} on bundle {rep['bundle_id']}", "",
             f"Winner: **{rep['winner'] or 'none'}** — {rep['winner_reason']}", "",
             "| rank | policy | " + " | ".join(rep["metrics"][rep["ranking"][0]]) + " |",
             "|---|---|" + "---|" * len(rep["metrics"][rep["ranking"][0]])]
    for i, p in enumerate(rep["ranking"], 1):
        cells = [f"{e['value']:.4f} [{e['lo']:.4f}, {e['hi']:.4f}]" if e["n"] else "n/a"
                 for e in rep["metrics"][p].values()]
        lines.append(f"| {i} | {p} | " + " | ".join(cells) + " |")
    lines += ["", "| policy | variant | behaviour (rows changed) | other overrides |", "|---|---|---|---|"]
    for p, d in rep.get("policies", {}).items():
        summary = d["behaviour_summary"].replace("|", "\\|")
        lines.append(f"| {p} | {d['variant']} | {summary} ({d['behaviour_rows_changed']}) | "
                     f"{', '.join(d['overrides']) or '-'} |")
    return "\n".join(lines) + "\n"


def phase2_report(cfg: Phase2Config, bundle: Path, out_root: Path, now: dt.datetime | None = None) -> dict[str, Any]:
    """Run the ablation and write the report folder; return its manifest.

    Raises:
        ValueError: the bundle has no rows of ``cfg.role``, or a policy's trial config is invalid
            (``ConfigError``, every policy's problems); both before anything is trained.
        BundleError: the bundle does not verify against its manifest.
        Phase2Locked: another run into ``out_root`` is running (nothing trained nor written).
    """
    from tracebridge.train.data import verify_bundle_dir

    bman = verify_bundle_dir(bundle)
    check_role(cfg.role, bundle, bman)
    resolved = policy_configs(cfg)
    with hold_run(Path(out_root)):  # after the checks: a bad config still exits 2 having written nothing
        folder = new_bundle_dir(out_root, now or dt.datetime.now(dt.UTC))
        with hold_work(folder.parent / f"{WORK_PREFIX}{folder.name}", bundle, bman.get("bundle_id")) as work:
            return _run_and_report(cfg, bundle, bman, resolved, folder, work)


def _run_and_report(cfg: Phase2Config, bundle: Path, bman: dict[str, Any], resolved: dict[str, Any],
                    folder: Path, work: Path) -> dict[str, Any]:
    """Train every policy in ``work``, then write the report folder; return its manifest."""
    trials = run_policies(cfg, bundle, work)
    rep = {"role": cfg.role, "bundle_id": bman.get("bundle_id"), **rank_policies(cfg, trials),
           "policies": policy_table(cfg, resolved, trials),
           "trials": [{k: v for k, v in t.items() if k != "loss_curve"} for t in trials]}
    rep["numbers_sha256"] = sha256_json(numbers_of(rep))
    (folder / "report.json").write_text(json.dumps(rep, indent=2, sort_keys=True, default=str))
    (folder / "report.md").write_text(to_markdown(rep))
    man = {"kind": "phase2-ablation", "created_at": utc_now(), "config": to_dict(cfg), "config_hash": config_hash(cfg),
           "bundle": str(bundle), "bundle_id": bman.get("bundle_id"),
           "bundle_manifest_sha256": sha256_file(bundle / "manifest.json"), "git_sha": git_sha(),
           "seeds": list(cfg.seeds), "trial_config_hashes": {f"{t['policy']}-s{t['seed']}": t["config_hash"] for t in trials},
           "winner": rep["winner"], "numbers_sha256": rep["numbers_sha256"]}
    write_manifest(folder, man)
    return {**man, "path": str(folder)}


def _read_phase2_manifest(path: Path) -> dict[str, Any]:
    """A phase-2 ``manifest.json`` with the keys ``reproduce`` reads, or ValueError (``path:key: why``)."""
    try:
        man = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read a phase-2 manifest: {exc}") from exc
    if not isinstance(man, dict) or man.get("kind") != "phase2-ablation":
        raise ValueError(f"{path}:kind: not a phase-2 manifest (give <report folder>/manifest.json)")
    for key, typ in (("bundle", str), ("bundle_manifest_sha256", str), ("numbers_sha256", str), ("config", dict)):
        if not isinstance(man.get(key), typ):
            raise ValueError(f"{path}:{key}: missing or not a {typ.__name__}")  # noqa: TRY004 - the CLI's bad-input error
    return man


def reproduce(manifest_path: Path, out_root: Path) -> dict[str, Any]:
    """Re-run a phase-2 report from its manifest; compare every number.

    Raises:
        ValueError: the manifest is unreadable or not a phase-2 manifest, or the bundle is gone or
            no longer matches the manifest's hash.
    """
    man = _read_phase2_manifest(Path(manifest_path))
    bundle = Path(man["bundle"])
    if not (bundle / "manifest.json").is_file() or sha256_file(bundle / "manifest.json") != man["bundle_manifest_sha256"]:
        raise ValueError(f"{bundle}: bundle missing or changed since {manifest_path} (bundle_manifest_sha256)")
    cfg = load_config(Phase2Config, None, [])
    cfg = dataclasses.replace(cfg, **{k: v for k, v in man["config"].items() if k != "policies"})
    cfg.policies = [PolicySpec(**p) for p in man["config"]["policies"]]
    again = phase2_report(cfg, bundle, out_root)
    return {"original": str(manifest_path), "rerun": again["path"], "numbers_sha256": again["numbers_sha256"],
            "expected": man["numbers_sha256"], "reproduced": again["numbers_sha256"] == man["numbers_sha256"]}
