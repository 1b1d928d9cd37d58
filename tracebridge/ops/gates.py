"""Canary gates (phase 3): quality, safety, cost and latency of the candidate slice against the baseline.

Each check is pure: samples in, a ``Check`` out (status, both arms' values, threshold, test
p-value, bootstrap interval, reason). The gate passes only when every gated check passes.

* **Quality** (success rate, verifier accuracy, reaction score): fails when the candidate is
  worse by more than ``max_drop`` *or* a one-sided test finds it significantly worse at
  ``alpha`` (two-proportion z-test for rates, Mann-Whitney U for reaction scores).
* **Safety** (share of sessions with an episode error, a failed tool call, a verifier risk flag,
  or a fallback to baseline): fails when the candidate's share exceeds the baseline's by more
  than the allowed increase (``safety.*``) *or*, except for fallbacks, is significantly higher
  at ``alpha`` (one-sided z-test). The baseline cannot fall back, so the fallback limit is in
  effect a ceiling on the candidate's fallback rate.
* **Cost** (tokens and dollars per session): fails when the candidate's mean exceeds the
  baseline's by more than the allowed relative increase, or the absolute dollar budget.
* **Latency** (p50 and p95 of session wall time): fails above the allowed relative increase or
  the absolute p95 ceiling.
* **Sample sizes**: fewer than ``min_sessions`` per arm fails everything; a quality metric with
  fewer than its minimum fails when ``required`` and is reported as ``not_gated`` otherwise; a cost,
  latency or safety check (always gated) fails when an arm has nothing to measure, naming each arm's count. An
  arm whose sessions carry more than one policy id (the canary's candidate changed within the
  period) fails everything too: the report would name one policy for the other's sessions.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tracebridge.capture.writer import write_atomic
from tracebridge.config import config_hash, to_dict
from tracebridge.ops import stats
from tracebridge.ops.config import GateConfig, QualityGate
from tracebridge.ops.samples import Sample, SampleSet
from tracebridge.schema.canonical import sha256_json, utc_now

PASS, FAIL, NOT_GATED = "pass", "fail", "not_gated"
EPS = 1e-9  # an increase, drop or mean exactly at its limit passes (means of sums carry float error: +0.1000000000000018)


@dataclass
class Check:
    """One gate line."""

    name: str
    status: str
    candidate: float | None
    baseline: float | None
    threshold: str
    reason: str
    n: dict[str, int] = field(default_factory=dict)
    p_value: float | None = None
    ci: list[float] | None = None
    group: str = ""  # sample_size | quality | safety | cost | latency


@dataclass
class GateReport:
    """Result of ``tracebridge gate``; ``report_id`` is a hash of everything but ``created_at``."""

    passed: bool
    checks: list[Check]
    counts: dict[str, Any]
    policies: dict[str, str]
    gate_config: dict[str, Any]
    config_hash: str
    created_at: str = ""
    report_id: str = ""

    @property
    def reasons(self) -> list[str]:
        """Each failed check as ``name: reason``."""
        return [f"{c.name}: {c.reason}" for c in self.checks if c.status == FAIL]

    def to_dict(self) -> dict[str, Any]:
        """The report as a plain dict, with ``reasons`` added."""
        d = asdict(self)
        d["reasons"] = self.reasons
        return d


def gate_report_id(report: dict[str, Any]) -> str:
    """Content id of a gate report dict: sha256 of everything but its id, time and derived reasons."""
    return sha256_json({k: v for k, v in report.items() if k not in ("created_at", "report_id", "reasons")})[:16]


def _r(x: float | None) -> float | None:
    if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))):
        return None
    return round(float(x), 6)


def _few(name: str, n: dict[str, int], need: int, gate: QualityGate, unit: str) -> Check:
    status = FAIL if gate.required else NOT_GATED
    low = min(n, key=n.get)  # type: ignore[arg-type]
    return Check(name, status, None, None, f">= {need} {unit} per arm",
                 f"insufficient samples: {low} has {n[low]} {unit} < {need}", n)


def _no_samples(name: str, n: dict[str, int], thr: str, cfg: GateConfig, what: str = "sessions") -> Check:
    """A cost, latency or safety check with an arm that has nothing to measure: it fails (these are always
    gated, unlike an optional quality metric), saying what each arm had and what a gate needs."""
    low = min(n, key=n.get)  # type: ignore[arg-type]
    return Check(name, FAIL, None, None, thr, f"no {what} in the {low} arm ({n['candidate']} candidate, "
                 f"{n['baseline']} baseline); needs >= {cfg.min_sessions} sessions per arm (min_sessions)", n)


def check_rate(name: str, cand: list[bool], base: list[bool], gate: QualityGate, need: int,
               cfg: GateConfig, unit: str = "sessions") -> Check:
    """A rate must not drop by more than ``max_drop`` nor significantly (z-test)."""
    n = {"candidate": len(cand), "baseline": len(base)}
    if min(n.values()) < need:
        return _few(name, n, need, gate, unit)
    rc, rb = sum(cand) / len(cand), sum(base) / len(base)
    p = stats.two_proportion_ztest(sum(cand), len(cand), sum(base), len(base))
    ci = stats.bootstrap_diff_ci([float(x) for x in cand], [float(x) for x in base], cfg.n_boot, cfg.seed)
    thr = f"drop <= {gate.max_drop} and z-test p >= {cfg.alpha}"
    reasons = []
    if rb - rc > gate.max_drop + EPS:  # 0.72 - 0.70 is 0.020000000000000018: "dropped 0.0200 > 0.02"
        reasons.append(f"dropped {rb - rc:.4f} > {gate.max_drop} ({rc:.4f} vs {rb:.4f})")
    if p < cfg.alpha:
        reasons.append(f"significantly lower (z-test p={p:.4g} < {cfg.alpha})")
    ok = not reasons
    reason = "; ".join(reasons) if reasons else f"{rc:.4f} vs {rb:.4f} (p={p:.4g})"
    return Check(name, PASS if ok else FAIL, _r(rc), _r(rb), thr, reason, n, _r(p), [_r(x) for x in ci])


def check_score(name: str, cand: list[float], base: list[float], gate: QualityGate, need: int,
                cfg: GateConfig) -> Check:
    """A mean score must not drop by more than ``max_drop`` nor significantly (Mann-Whitney U)."""
    n = {"candidate": len(cand), "baseline": len(base)}
    if min(n.values()) < need:
        return _few(name, n, need, gate, "scored sessions")
    mc, mb = stats.mean(cand), stats.mean(base)
    p = stats.mann_whitney_p(cand, base, "less")
    ci = stats.bootstrap_diff_ci(cand, base, cfg.n_boot, cfg.seed)
    reasons = []
    if mb - mc > gate.max_drop + EPS:
        reasons.append(f"mean dropped {mb - mc:.4f} > {gate.max_drop} ({mc:.4f} vs {mb:.4f})")
    if p < cfg.alpha:
        reasons.append(f"significantly lower (Mann-Whitney p={p:.4g} < {cfg.alpha})")
    reason = "; ".join(reasons) if reasons else f"{mc:.4f} vs {mb:.4f} (p={p:.4g})"
    return Check(name, FAIL if reasons else PASS, _r(mc), _r(mb),
                 f"drop <= {gate.max_drop} and Mann-Whitney p >= {cfg.alpha}", reason, n, _r(p), [_r(x) for x in ci])


def check_rate_increase(name: str, cand: list[bool], base: list[bool], max_inc: float, cfg: GateConfig,
                        test: bool = True) -> Check:
    """A rate of bad sessions may rise by at most ``max_inc`` (absolute) nor, with ``test``, significantly."""
    n = {"candidate": len(cand), "baseline": len(base)}
    if not cand or not base:
        return _no_samples(name, n, f"increase <= {max_inc}", cfg)
    rc, rb = sum(cand) / len(cand), sum(base) / len(base)
    # one-sided H1 "candidate higher": the z-test's "first rate lower" with the arms swapped
    p = stats.two_proportion_ztest(sum(base), len(base), sum(cand), len(cand))
    ci = stats.bootstrap_diff_ci([float(x) for x in cand], [float(x) for x in base], cfg.n_boot, cfg.seed)
    reasons = []
    if rc - rb > max_inc + EPS:
        reasons.append(f"rose {rc - rb:.4f} > {max_inc} (candidate {rc:.4f} vs baseline {rb:.4f})")
    if test and p < cfg.alpha:
        reasons.append(f"significantly higher (z-test p={p:.4g} < {cfg.alpha}; candidate {rc:.4f} vs "
                       f"baseline {rb:.4f})")
    thr = f"increase <= {max_inc}" + (f" and z-test p >= {cfg.alpha}" if test else "")
    reason = "; ".join(reasons) if reasons else f"{rc:.4f} vs {rb:.4f}" + (f" (p={p:.4g})" if test else "")
    return Check(name, FAIL if reasons else PASS, _r(rc), _r(rb), thr, reason, n, _r(p) if test else None,
                 [_r(x) for x in ci])


def safety_checks(c: list[Sample], b: list[Sample], cfg: GateConfig) -> list[Check]:
    """The safety group: sessions with errors, tool errors, risk flags and fallbacks, per arm."""
    g = cfg.safety
    out = [check_rate_increase(name, [getattr(s, attr) > 0 for s in c], [getattr(s, attr) > 0 for s in b],
                               limit, cfg, test=attr != "fallbacks")
           for name, attr, limit in (("error_rate", "errors", g.max_error_increase),
                                     ("tool_error_rate", "tool_errors", g.max_tool_error_increase),
                                     ("risk_flag_rate", "risk_flags", g.max_risk_flag_increase),
                                     ("fallback_rate", "fallbacks", g.max_fallback_increase))]
    for chk in out:
        chk.group = "safety"
    return out


def check_mean_cost(name: str, cand: list[float], base: list[float], max_inc: float, cfg: GateConfig,
                    absolute: float = 0.0) -> Check:
    """A mean cost may rise by at most ``max_inc`` (relative) and stay under ``absolute`` (if > 0)."""
    n = {"candidate": len(cand), "baseline": len(base)}
    thr = f"increase <= {max_inc:.0%}" + (f" and mean <= {absolute}" if absolute > 0 else "")
    if not cand or not base:  # no mean: it passed on nan and read "nan vs nan (+nan%)"
        return _no_samples(name, n, thr, cfg)
    mc, mb = stats.mean(cand), stats.mean(base)
    inc = stats.rel_increase(mc, mb)
    p = stats.mann_whitney_p(cand, base, "greater")
    ci = stats.bootstrap_diff_ci(cand, base, cfg.n_boot, cfg.seed)
    reasons = []
    if inc > max_inc + EPS:
        reasons.append(f"mean up {inc:+.2%} > +{max_inc:.0%} ({mc:.6g} vs {mb:.6g})")
    if absolute > 0 and mc > absolute + EPS:  # 100 sessions of $0.01: a mean of 0.010000000000000007
        reasons.append(f"mean {mc:.6g} over budget {absolute}")
    reason = "; ".join(reasons) if reasons else f"{mc:.6g} vs {mb:.6g} ({inc:+.2%}, p={p:.4g})"
    return Check(name, FAIL if reasons else PASS, _r(mc), _r(mb), thr, reason, n, _r(p), [_r(x) for x in ci])


def check_latency(name: str, q: float, cand: list[float], base: list[float], max_inc: float,
                  cfg: GateConfig, ceiling_ms: float = 0.0) -> Check:
    """A latency percentile may rise by at most ``max_inc`` and stay under ``ceiling_ms`` (if > 0)."""
    n = {"candidate": len(cand), "baseline": len(base)}
    thr = f"increase <= {max_inc:.0%}" + (f" and <= {ceiling_ms} ms" if ceiling_ms > 0 else "")
    if not cand or not base:
        return _no_samples(name, n, thr, cfg, "sessions with a latency")
    qc, qb = stats.percentile(cand, q), stats.percentile(base, q)
    inc = stats.rel_increase(qc, qb)
    p = stats.mann_whitney_p(cand, base, "greater")
    reasons = []
    if inc > max_inc + EPS:
        reasons.append(f"p{q:g} up {inc:+.2%} > +{max_inc:.0%} ({qc:.1f} vs {qb:.1f} ms)")
    if ceiling_ms > 0 and qc > ceiling_ms + EPS:
        reasons.append(f"p{q:g} {qc:.1f} ms over ceiling {ceiling_ms} ms")
    reason = "; ".join(reasons) if reasons else f"{qc:.1f} vs {qb:.1f} ms ({inc:+.2%})"
    return Check(name, FAIL if reasons else PASS, _r(qc), _r(qb), thr, reason, n, _r(p))


def _pooled_verdicts(ss: list[Sample]) -> list[bool]:
    out: list[bool] = []
    for s in ss:
        out += [True] * s.verdicts_correct + [False] * (s.verdicts_total - s.verdicts_correct)
    return out


_GROUPS = {"sample_size": "sample_size", "success_rate": "quality", "verifier_accuracy": "quality",
           "reaction_score": "quality", "tokens_per_session": "cost", "usd_per_session": "cost",
           "latency_p50": "latency", "latency_p95": "latency"}


def _mixed_policies(samples: SampleSet) -> str:
    """Why an arm's sessions cannot be gated as one policy ('' when each arm has at most one policy id)."""
    out = []
    for arm, ss in samples.by_arm.items():
        ids = Counter(s.policy for s in ss if s.policy)
        if len(ids) > 1:
            out.append(f"the {arm} arm mixes policies " + ", ".join(f"{k} ({v})" for k, v in ids.most_common()))
    if not out:
        return ""
    return "; ".join(out) + "; gate one policy: --since the switch, or a trace root of one canary period"


def evaluate_gates(samples: SampleSet, cfg: GateConfig, policies: dict[str, str] | None = None) -> GateReport:
    """Run every check on the samples; the report passes only when every gated check passes."""
    c, b = samples.by_arm["candidate"], samples.by_arm["baseline"]
    n = {"candidate": len(c), "baseline": len(b)}
    checks = []
    few = min(n.values()) < cfg.min_sessions
    low = min(n, key=n.get)  # type: ignore[arg-type]
    mixed = _mixed_policies(samples)  # an arm pooling two policies gates neither (a canary switched mid-period)
    checks.append(Check("sample_size", FAIL if few or mixed else PASS, n["candidate"], n["baseline"],
                        f">= {cfg.min_sessions} sessions per arm, one policy per arm",
                        f"insufficient samples: {low} has {n[low]} sessions < {cfg.min_sessions}" if few
                        else mixed or f"{n['candidate']} candidate, {n['baseline']} baseline sessions", n))
    checks.append(check_rate("success_rate", [bool(s.success) for s in c if s.success is not None],
                             [bool(s.success) for s in b if s.success is not None], cfg.success,
                             cfg.min_sessions, cfg))
    checks.append(check_rate("verifier_accuracy", _pooled_verdicts(c), _pooled_verdicts(b),
                             cfg.verifier_accuracy, cfg.min_verdicts, cfg, unit="verdicts"))
    checks.append(check_score("reaction_score", [s.reaction_score for s in c if s.reaction_score is not None],
                              [s.reaction_score for s in b if s.reaction_score is not None],
                              cfg.reaction_score, cfg.min_reactions, cfg))
    checks.append(check_mean_cost("tokens_per_session", [float(s.tokens) for s in c],
                                  [float(s.tokens) for s in b], cfg.max_token_increase, cfg))
    checks.append(check_mean_cost("usd_per_session", [s.cost_usd for s in c], [s.cost_usd for s in b],
                                  cfg.max_cost_increase, cfg, cfg.max_usd_per_session))
    lat_c = [s.latency_ms for s in c if s.latency_ms is not None]
    lat_b = [s.latency_ms for s in b if s.latency_ms is not None]
    checks.append(check_latency("latency_p50", 50, lat_c, lat_b, cfg.max_p50_increase, cfg))
    checks.append(check_latency("latency_p95", 95, lat_c, lat_b, cfg.max_p95_increase, cfg, cfg.max_p95_ms))
    checks += safety_checks(c, b, cfg)
    for chk in checks:
        chk.group = chk.group or _GROUPS.get(chk.name, "")
    if few or mixed:  # nothing below the sample-size line may pass on too few sessions or pooled policies
        for chk in checks[1:]:
            if chk.status == PASS:
                chk.status = FAIL
                chk.reason = (f"fails on too few sessions ({n['candidate']} candidate, {n['baseline']} baseline; "
                              f"needs >= {cfg.min_sessions} per arm): {chk.reason}") if few else \
                    f"fails on pooled policies: {chk.reason}"
    report = GateReport(
        passed=all(ch.status != FAIL for ch in checks), checks=checks, counts=samples.counts(),
        policies=policies or samples.policies(), gate_config=to_dict(cfg), config_hash=config_hash(cfg),
    )
    report.report_id = gate_report_id(report.to_dict())
    report.created_at = utc_now()
    return report


def write_gate_report(report: GateReport, path: str | Path) -> Path:
    """Write the report as JSON, atomically (``promote --report`` reads it back and checks its id)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    return path
