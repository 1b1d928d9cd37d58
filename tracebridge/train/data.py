"""Training data from an export bundle: read and check view rows, pick a role's rows by split,
curate them (optimized variant) and normalise them for TRL.

Views (DESIGN.md): ``{"messages", "tools"?, "meta"}`` rows for ``*_sft`` and the SFT half of
``worker_recovery_cases``; ``{"prompt", "chosen", "rejected", "tools"?, "meta"}`` for
``planner_pref_pairs``, ``verifier_pref_pairs`` and the pair half of ``worker_recovery_cases``. A view's rows are every
``*.jsonl`` in the bundle whose name (or folder) starts with the view name; the split comes from
``meta.split``. A bad row is quarantined with ``file:line:field: reason`` and counted
(read = accepted + quarantined); nothing is dropped silently.

Only ``read_view``/``verify_bundle_dir`` touch files; the rest are pure.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tracebridge.gc_pause import gc_paused
from tracebridge.schema.canonical import sha256_json
from tracebridge.train.config import DataConfig

log = logging.getLogger(__name__)

# role -> (SFT view, extra SFT view for the optimized variant, preference view)
ROLE_VIEWS: dict[str, tuple[str, str | None, str | None]] = {
    "planner": ("planner_sft", None, "planner_pref_pairs"),
    "worker": ("worker_sft", "worker_recovery_cases", "worker_recovery_cases"),
    "verifier": ("verifier_sft", None, "verifier_pref_pairs"),
}
SPLITS = ("train", "validation", "test")


class BundleError(ValueError):
    """A bundle that cannot be trained on (missing manifest files, hash mismatch, no rows)."""


@dataclass
class Quarantined:
    """A rejected row: where it was, why, and the raw line (kept, never dropped)."""

    where: str
    reason: str
    raw: str

    def to_dict(self) -> dict[str, str]:
        """``{where, reason, raw}``."""
        return {"where": self.where, "reason": self.reason, "raw": self.raw}


@dataclass
class ViewData:
    """Rows of one view, with the rejected ones."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    read: int = 0
    files: list[str] = field(default_factory=list)


def _check_messages(msgs: Any, key: str, need_assistant: bool) -> list[str]:
    if not isinstance(msgs, list) or not msgs:
        return [f"{key}: must be a non-empty list of messages"]
    out = []
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant", "tool"):
            out.append(f"{key}[{i}].role: must be system|user|assistant|tool")
        elif m.get("content") is None and not m.get("tool_calls"):
            out.append(f"{key}[{i}].content: missing")
    if need_assistant and not any(isinstance(m, dict) and m.get("role") == "assistant" for m in msgs):
        out.append(f"{key}: no assistant turn to train on")
    return out


def check_row(row: Any) -> tuple[str | None, list[str]]:
    """Classify a view row as ``"sft"`` or ``"pref"`` and list its problems (``field: reason``)."""
    if not isinstance(row, dict):
        return None, ["row: not a JSON object"]
    meta = row.get("meta")
    probs = [] if isinstance(meta, dict) else ["meta: missing (lineage run_id/event_ids/split required)"]
    if isinstance(meta, dict) and meta.get("split") not in SPLITS:
        probs.append(f"meta.split: {meta.get('split')!r} is not one of {', '.join(SPLITS)}")
    if "messages" in row:
        return "sft", probs + _check_messages(row["messages"], "messages", True)
    if "chosen" in row:
        probs += _check_messages(row.get("prompt"), "prompt", False)
        probs += _check_messages(row.get("chosen"), "chosen", True)
        probs += _check_messages(row.get("rejected"), "rejected", True)
        if not probs and row.get("chosen") == row.get("rejected"):  # DPO's loss is flat on it; eval scores a tie
            probs.append("rejected: same as chosen, so the pair prefers nothing")
        return "pref", probs
    return None, probs + ["messages: row has neither 'messages' nor 'prompt/chosen/rejected'"]


def view_files(bundle_dir: Path, view: str) -> list[Path]:
    """The JSONL files of ``view`` in a bundle: ``<view>*.jsonl`` or ``<view>/**.jsonl``."""
    out = [p for p in sorted(Path(bundle_dir).rglob("*.jsonl"))
           if p.name.startswith(view) or view in [q.name for q in p.relative_to(bundle_dir).parents]]
    return out


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").rstrip("\n")


def _loads(raw: bytes) -> Any:
    """One JSONL line: orjson (several times faster than ``json`` on long rows); a line that is
    not valid UTF-8 is read with replacement characters, as a text-mode reader would.

    Raises:
        json.JSONDecodeError: not JSON (orjson's error is one).
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(_text(raw))


def read_view(bundle_dir: str | Path, view: str, shared: dict[bytes, Any] | None = None) -> ViewData:
    """Read and check every row of ``view`` (I/O edge).

    Args:
        shared: when given, equal messages of different rows become one object, kept in it by
            their JSON: a conversation's context repeats in every later span row and in its
            recovery rows, so rows of long conversations share most of their memory. Nothing
            downstream mutates a message.
    """
    bundle_dir = Path(bundle_dir)
    data = ViewData()
    with gc_paused():
        _read_files(bundle_dir, view, data, shared)
    for q in data.quarantined[:5]:
        log.warning("quarantined %s: %s", q.where, q.reason)
    return data


def _read_files(bundle_dir: Path, view: str, data: ViewData, shared: dict[bytes, Any] | None) -> None:
    for path in view_files(bundle_dir, view):
        data.files.append(str(path.relative_to(bundle_dir)))
        with path.open("rb", buffering=1 << 20) as fh:
            for lineno, raw in enumerate(fh, 1):
                if not raw.strip():
                    continue
                data.read += 1
                where = f"{path}:{lineno}"
                try:
                    row = _loads(raw)
                except json.JSONDecodeError as exc:
                    data.quarantined.append(Quarantined(f"{where}:row", f"not JSON: {exc.msg}", _text(raw)))
                    continue
                kind, probs = check_row(row)
                if probs:
                    data.quarantined.append(Quarantined(f"{where}:{probs[0].split(':')[0]}", "; ".join(probs),
                                                        _text(raw)))
                    continue
                row["_kind"] = kind
                if shared is not None:
                    _share_messages(row, shared)
                data.rows.append(row)


def _share_messages(row: dict[str, Any], shared: dict[bytes, Any]) -> None:
    for key in ("messages", "prompt", "chosen", "rejected"):
        msgs = row.get(key)
        if isinstance(msgs, list):
            row[key] = [shared.setdefault(orjson.dumps(m), m) if isinstance(m, dict) else m for m in msgs]


def verify_bundle_dir(bundle_dir: str | Path) -> dict[str, Any]:
    """Check the bundle's files against its manifest and return the manifest.

    One pass of ``tracebridge.export.bundle.verify_bundle``: paths inside the bundle, sizes,
    each file's sha256 (streamed: memory stays flat whatever the file size), the bundle id, no
    unlisted ``.jsonl`` file.

    Raises:
        BundleError: no manifest, a missing file or a hash mismatch.
    """
    from tracebridge.export.bundle import verify_bundle

    bundle_dir = Path(bundle_dir)
    mpath = bundle_dir / "manifest.json"
    if not mpath.is_file():
        raise BundleError(f"{mpath}: no manifest.json; only exported bundles can be trained on")
    try:
        return verify_bundle(bundle_dir).data
    except ValueError as exc:  # export's BundleError: same meaning, this module's type
        raise BundleError(str(exc)) from exc


@dataclass
class RoleData:
    """A role's rows of every split: SFT rows, extra recovery SFT rows, preference pairs."""

    role: str
    sft: list[dict[str, Any]]
    recovery_sft: list[dict[str, Any]]
    pref: list[dict[str, Any]]
    quarantined: list[Quarantined]
    read: int

    def split(self, rows: list[dict[str, Any]], split: str) -> list[dict[str, Any]]:
        """The rows of ``rows`` whose ``meta.split`` is ``split``."""
        return [r for r in rows if r["meta"].get("split") == split]

    def counts(self) -> dict[str, Any]:
        """Row counts: ``read``, ``accepted``, ``quarantined``, and the SFT, recovery SFT and
        preference rows by split."""
        def by_split(rows: list[dict[str, Any]]) -> dict[str, int]:
            return dict(Counter(r["meta"]["split"] for r in rows))
        accepted = len(self.sft) + len(self.recovery_sft) + len(self.pref)
        return {"read": self.read, "accepted": accepted, "quarantined": len(self.quarantined),
                "sft": by_split(self.sft), "recovery_sft": by_split(self.recovery_sft), "pref": by_split(self.pref)}


def load_role_data(bundle_dir: str | Path, role: str) -> RoleData:
    """Read the views of ``role`` from a bundle.

    Raises:
        BundleError: when the role's SFT view has no rows.
    """
    sft_view, extra_view, pref_view = ROLE_VIEWS[role]
    shared: dict[bytes, Any] = {}  # one message object per distinct message over the role's views
    views = {v: read_view(bundle_dir, v, shared) for v in sorted(x for x in {sft_view, extra_view, pref_view} if x)}
    shared.clear()
    if not views[sft_view].rows:
        msg = (f"{bundle_dir}: view {sft_view} has no valid rows "
               f"(files: {views[sft_view].files or 'none'}, quarantined: {len(views[sft_view].quarantined)})")
        if not views[sft_view].files:  # e.g. imported OpenClaw sessions: worker turns only
            held = [r for r, (v, _, _) in ROLE_VIEWS.items() if r != role and view_files(Path(bundle_dir), v)]
            msg += (f"; the bundle holds no {role} view: its traces have no {role} turns"
                    + (f"; it holds rows for role {' and '.join(held)}: train role={held[0]}" if held else ""))
        raise BundleError(msg)
    sft = [r for r in views[sft_view].rows if r["_kind"] == "sft"]
    recovery = [r for r in views[extra_view].rows if r["_kind"] == "sft"] if extra_view else []
    pref = [r for r in views[pref_view].rows if r["_kind"] == "pref"] if pref_view else []
    quarantined = [q for v in views.values() for q in v.quarantined]
    # rows of a kind the view does not use (e.g. pairs inside an SFT view) are counted as quarantined
    used = {id(r) for r in sft + recovery + pref}
    for name, v in views.items():
        for r in v.rows:
            if id(r) not in used and not (name == extra_view == pref_view):
                quarantined.append(Quarantined(f"{name}:{r['meta'].get('run_id')}:_kind",
                                               f"{r['_kind']} row in view {name}", json.dumps(r)[:2000]))
    read = sum(v.read for v in views.values())
    return RoleData(role, sft, recovery, pref, quarantined, read)


def feedback_score(labels: dict[str, Any]) -> float | None:
    """A row's feedback score from its labels (``feedback_score`` or ``feedback.score``), if any."""
    if isinstance(labels.get("feedback_score"), (int, float)):
        return float(labels["feedback_score"])
    fb = labels.get("feedback")
    if isinstance(fb, dict) and isinstance(fb.get("score"), (int, float)):
        return float(fb["score"])
    return None


def _row_key(row: dict[str, Any]) -> str:
    return sha256_json({k: row.get(k) for k in ("messages", "tools", "prompt", "chosen", "rejected")})


def _lineage(row: dict[str, Any]) -> tuple[Any, tuple[str, ...]] | None:
    ids = (meta := row.get("meta") or {}).get("event_ids")
    return (meta.get("run_id"), tuple(map(str, ids))) if isinstance(ids, list) and ids else None


def new_recovery_rows(sft: list[dict[str, Any]], recovery: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The recovery rows (``worker_recovery_cases/sft``) not already among the SFT rows (pure).

    The exporter writes each recovery row to ``worker_sft`` too, labelled ``recovery: true``: added again,
    ``curate`` would repeat it ``2 × recovery_weight`` times unless ``data.dedup`` happened to drop the copy.
    A recovery row is already there when an SFT row has the same messages, tools and pairs (``_row_key``), or
    the same run and ``meta.event_ids`` and is itself labelled ``recovery`` (so it is up-weighted in its place).
    """
    recovered = {_lineage(r) for r in sft if ((r.get("meta") or {}).get("labels") or {}).get("recovery")}
    left = [r for r in recovery if _lineage(r) is None or _lineage(r) not in recovered]
    keys = {_row_key(r) for r in sft} if left else set()  # hashed only when lineage left rows unmatched
    return [r for r in left if _row_key(r) not in keys]


def curate(rows: list[dict[str, Any]], cfg: DataConfig) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The optimized variant's curation (pure): dedup, drop negative feedback, up-weight
    positive feedback and failure→recovery rows by repeating them.

    Returns:
        The curated rows and counts of what each rule did.
    """
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    rep = {"in": len(rows), "duplicates": 0, "negative_feedback": 0, "positive_feedback": 0, "recovery": 0}
    for r in rows:
        if cfg.dedup:
            k = _row_key(r)
            if k in seen:
                rep["duplicates"] += 1
                continue
            seen.add(k)
        labels = r["meta"].get("labels") or {}
        score = feedback_score(labels)
        if score is not None and score < 0:
            rep["negative_feedback"] += 1
            continue
        copies = 1
        if labels.get("recovery"):
            copies *= cfg.recovery_weight
            rep["recovery"] += 1
        if score is not None and score > 0:
            copies *= cfg.feedback_weight
            rep["positive_feedback"] += 1
        out.extend([r] * copies)
    rep["out"] = len(out)
    return out, rep


def _norm_message(m: dict[str, Any]) -> dict[str, Any]:
    content = m.get("content")
    if content is None:
        content = ""
    elif not isinstance(content, str):
        content = json.dumps(content, ensure_ascii=False)
    out: dict[str, Any] = {"role": m["role"], "content": content}
    # which call a tool result answers, and its tool: chat templates (Llama 3.1, Mistral) render them
    out.update({k: str(m[k]) for k in ("tool_call_id", "name") if m.get(k) is not None})
    calls = []
    for tc in m.get("tool_calls") or []:
        f = tc.get("function", tc)
        args = f.get("arguments", {})
        calls.append({"type": "function", "function": {
            "name": f.get("name", ""),
            "arguments": args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)}}
            | ({"id": str(tc["id"])} if tc.get("id") is not None else {}))
    out["tool_calls"] = calls or None
    return out


class _Normaliser:
    """``_norm_message`` once per message object: rows that share a message (``read_view``'s
    ``shared``) share its normalised form too."""

    def __init__(self) -> None:
        self._done: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}  # id -> (message, normalised)

    def __call__(self, m: dict[str, Any]) -> dict[str, Any]:
        hit = self._done.get(id(m))
        if hit is None:
            hit = self._done[id(m)] = (m, _norm_message(m))  # the message is kept: its id stays unique
        return hit[1]


def _norm_tools(tools: Any) -> str | None:
    if isinstance(tools, str):  # export bundles already write tools as a JSON string
        return tools or None
    return json.dumps(tools, ensure_ascii=False) if tools else None


def to_sft_records(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as TRL conversational records: tool-call arguments and ``tools`` as JSON strings (so
    Arrow does not merge different argument structs into null-filled ones), call ids kept, no ``meta``.

    Rows stay ``messages`` (assistant-only loss: every assistant turn of the row is a target), unless
    a row is a conversation window (``meta.labels.context_messages``, written by
    ``tracebridge.export.views_conversation``): its first ``context_messages`` messages are context
    that other rows already train on. Then every record becomes conversational
    ``prompt``/``completion`` (one dataset, one format; the same loss for rows with one assistant
    turn): the completion is the row's targets (one turn, or a span of turns with the tool results
    between them, which assistant-only loss leaves out), so no turn is trained once per later row
    that repeats it.
    """
    norm = _Normaliser()
    with gc_paused():
        recs = [{"messages": [norm(m) for m in r["messages"]], "tools": _norm_tools(r.get("tools"))} for r in rows]
        cuts = [((r.get("meta") or {}).get("labels") or {}).get("context_messages") for r in rows]
        if any(c is not None for c in cuts):
            recs = [_prompt_completion(r, c) for r, c in zip(recs, cuts)]
    return recs


def _prompt_completion(rec: dict[str, Any], cut: Any) -> dict[str, Any]:
    """``rec`` split before message ``cut`` (the last message when ``cut`` is no valid index)."""
    msgs = rec["messages"]
    k = cut if isinstance(cut, int) and 0 < cut < len(msgs) else len(msgs) - 1
    return {"prompt": msgs[:k], "completion": msgs[k:], "tools": rec["tools"]}


def to_pref_records(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Preference rows as TRL conversational prompt/chosen/rejected records."""
    norm = _Normaliser()
    with gc_paused():
        return [{k: [norm(m) for m in r[k]] for k in ("prompt", "chosen", "rejected")}
                | {"tools": _norm_tools(r.get("tools"))} for r in rows]
