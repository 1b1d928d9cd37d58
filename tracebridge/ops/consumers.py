"""Consumer checks of an export bundle: the consumers downstream of us can read what we wrote.

* **views parse** — every view file loads with ``datasets`` (a bundle with a dataset card: each
  view's splits together, ``load_dataset(bundle, config)``, as users load it; else one file per
  ``load_dataset("json")`` call) and its row count matches the bundle manifest (when it gives one); each of the five views of
  DESIGN.md has a file (``planner_pref_pairs`` only where runs record a reference plan);
* **TRL formatting** — rows of every view go through TRL's ``maybe_apply_chat_template`` with the
  project's tokenizer and chat template and give non-empty text;
* **Agent Lightning** — the bundle's Agent Lightning exports (files whose path names
  ``agentlightning``, ``triplet`` or ``al_messages``) are consumed by Agent Lightning's own types:
  triplet rows build ``agentlightning.Triplet``; span rows build ``agentlightning.Span``; message
  rows are Agent Lightning's ``OpenAIMessages``: its keys, ``messages`` valid as its
  ``ChatCompletionMessageParam`` list (each message with only its type's fields, tool calls as
  ``ChatCompletionMessageFunctionToolCallParam`` with string arguments), ``tools`` as its
  ``ChatCompletionFunctionToolParam`` list or null, and an assistant turn last.

Each check returns ``{"ok": bool, ...evidence}``; ``check_bundle`` runs them all.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import orjson

from tracebridge.capture.reader import iter_lines
from tracebridge.export.views import VIEWS

log = logging.getLogger(__name__)
AL_MARKERS = ("agentlightning", "triplet", "al_messages")
# views a bundle may lack: planner pairs exist only where runs record a reference plan (the simulator)
OPTIONAL_VIEWS = ("planner_pref_pairs",)


def _view_of(rel: str) -> str | None:
    """The view a bundle file (path relative to the bundle) belongs to, or None."""
    if not rel.endswith(".jsonl") or any(m in rel.lower() for m in AL_MARKERS):
        return None
    name = rel.rsplit("/", 1)[-1]
    for v in sorted(VIEWS, key=len, reverse=True):
        if name.startswith(v) or f"{v}/" in rel:
            return v
    return None


def view_files(bundle: Path) -> dict[str, list[Path]]:
    """View name → its JSONL files (``<view>*.jsonl`` or under a ``<view>/`` folder)."""
    out: dict[str, list[Path]] = {v: [] for v in VIEWS}
    for p in sorted(bundle.rglob("*.jsonl")):
        v = _view_of(p.relative_to(bundle).as_posix())
        if v is not None:
            out[v].append(p)
    return out


def _manifest_files(bundle: Path) -> list[dict[str, Any]] | None:
    """The manifest's ``files`` entries, or None without a readable manifest."""
    try:
        man = orjson.loads((bundle / "manifest.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    files = man.get("files") if isinstance(man, dict) else None
    return [f for f in files if isinstance(f, dict)] if isinstance(files, list) else None


def _manifest_rows(bundle: Path) -> dict[str, int]:
    return {f["path"]: f["rows"] for f in _manifest_files(bundle) or [] if isinstance(f.get("rows"), int)}


def _required_views(bundle: Path) -> set[str]:
    """Views whose files must be there: those the manifest lists (a bundle of real chat sessions has
    worker rows only, no planner or verifier view); without a manifest every view but the optional."""
    files = _manifest_files(bundle)
    if files is None:
        return set(VIEWS) - set(OPTIONAL_VIEWS)
    return {v for v in (_view_of(str(f.get("path", ""))) for f in files) if v is not None}


def _card_configs(bundle: Path) -> list[dict[str, Any]]:
    """The ``configs`` of the bundle's dataset card (``README.md`` front matter, with ``features.json``
    beside it), or [] for a bundle written before the card (or one that has no readable card)."""
    import yaml

    card = bundle / "README.md"
    if not (card.is_file() and (bundle / "features.json").is_file()):
        return []
    try:
        _, head, _ = card.read_text(encoding="utf-8").split("---\n", 2)
        configs = (yaml.safe_load(head) or {}).get("configs")
    except (OSError, ValueError, yaml.YAMLError, AttributeError):
        return []
    return [c for c in configs if isinstance(c, dict) and isinstance(c.get("data_files"), list)] \
        if isinstance(configs, list) else []


def _count(files: dict[str, int], problems: list[str], rows_in_manifest: dict[str, int], rel: str, n: int) -> None:
    files[rel] = n
    want = rows_in_manifest.get(rel)
    if want is not None and want != n:
        problems.append(f"{rel}: {n} rows loaded, manifest says {want}")


def check_views_parse(bundle: Path) -> dict[str, Any]:
    """Every view file loads with ``datasets`` and has the manifest's row count. A bundle with a dataset
    card is loaded as its users load it: each card config's splits in one ``load_dataset(bundle, config)``
    call (``card_configs``); files no config names, and bundles without a card, one file per call."""
    import tempfile

    # a fresh cache for each check: datasets reuses a cache whose files' names and sizes did not change
    # (an edited bundle would pass on the earlier load's rows)
    # (under .hf-cache/, which shadow-prune removes, should a killed check leave one)
    root = bundle.parent / ".hf-cache"
    root.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="check-", dir=root) as cache:
        return _views_parse(bundle, cache)


def _views_parse(bundle: Path, cache: str) -> dict[str, Any]:
    import datasets

    datasets.disable_progress_bars()
    rows_in_manifest, required = _manifest_rows(bundle), _required_views(bundle)
    files: dict[str, int] = {}
    problems: list[str] = []
    loaded: set[str] = set()
    card: dict[str, dict[str, int]] = {}
    for cfg in _card_configs(bundle):
        name = str(cfg.get("config_name"))
        parts = {str(d.get("split")): str(d.get("path")) for d in cfg["data_files"] if isinstance(d, dict)}
        loaded.update(parts.values())
        try:
            ds = datasets.load_dataset(str(bundle), name, cache_dir=cache)
        except Exception as exc:  # noqa: BLE001 - any loader error is the finding
            problems.append(f"README.md config {name} ({', '.join(parts.values())}): datasets cannot load its "
                            f"splits together: {type(exc).__name__}: {str(exc)[:300]}")
            continue
        card[name] = {split: len(ds[split]) for split in parts if split in ds}
        for split, rel in parts.items():
            if split in ds:
                _count(files, problems, rows_in_manifest, rel, len(ds[split]))
    by_view = view_files(bundle)
    if not any(by_view.values()):
        problems.append("no view file in the bundle")
    for view, paths in by_view.items():
        if not paths and view in required:
            problems.append(f"{view}: no file in the bundle")
        for p in paths:
            rel = p.relative_to(bundle).as_posix()
            if rel in loaded:
                continue
            try:
                ds = datasets.load_dataset("json", data_files=str(p), split="train", cache_dir=cache)
            except Exception as exc:  # noqa: BLE001 - any loader error is the finding
                problems.append(f"{rel}: datasets cannot load it: {type(exc).__name__}: {str(exc)[:300]}")
                continue
            _count(files, problems, rows_in_manifest, rel, len(ds))
    return {"ok": not problems, "files": files, "card_configs": card, "problems": problems}


def _tokenizer() -> Any:
    from tracebridge.train.config import ModelConfig
    from tracebridge.train.models import build_tokenizer

    return build_tokenizer(ModelConfig())


def _trl_row(row: dict[str, Any]) -> dict[str, Any]:
    keep = ("messages", "prompt", "chosen", "rejected", "tools")
    return {k: row[k] for k in keep if row.get(k) is not None}


def check_trl_formatting(bundle: Path, per_view: int = 20) -> dict[str, Any]:
    """The first rows of every view format through TRL's chat-template utilities."""
    from trl.data_utils import maybe_apply_chat_template

    tok = _tokenizer()
    done, problems = {}, []
    for view, paths in view_files(bundle).items():
        n = 0
        for p in paths:
            for line in iter_lines(p):
                if n >= per_view:
                    break
                if line.error:
                    problems.append(f"{p}:{line.lineno}: {line.error}")
                    continue
                try:
                    out = maybe_apply_chat_template(_trl_row(line.obj), tok)
                except Exception as exc:  # noqa: BLE001
                    problems.append(f"{p}:{line.lineno}: TRL formatting failed: {type(exc).__name__}: {exc}")
                    continue
                texts = [v for v in out.values() if isinstance(v, str)]
                if not texts or not all(t.strip() for t in texts):
                    problems.append(f"{p}:{line.lineno}: TRL formatting gave empty text")
                n += 1
        done[view] = n
    return {"ok": not problems, "rows_formatted": done, "problems": problems[:20]}


def _al_files(bundle: Path) -> list[Path]:
    return [p for p in sorted(bundle.rglob("*.jsonl"))
            if any(m in p.relative_to(bundle).as_posix().lower() for m in AL_MARKERS)]


_MESSAGE_TYPES: dict[str, Any] = {}


def _message_types() -> dict[str, Any]:
    """Validators of the field types of Agent Lightning's ``OpenAIMessages`` (``typing.TypedDict`` on
    Python < 3.12, which pydantic cannot validate whole), the OpenAI types it declares and builds."""
    if not _MESSAGE_TYPES:
        from agentlightning.adapter.messages import OpenAIMessages
        from openai.types.chat import (
            ChatCompletionAssistantMessageParam,
            ChatCompletionDeveloperMessageParam,
            ChatCompletionFunctionToolParam,
            ChatCompletionMessageFunctionToolCallParam,
            ChatCompletionMessageParam,
            ChatCompletionSystemMessageParam,
            ChatCompletionToolMessageParam,
            ChatCompletionUserMessageParam,
        )
        from pydantic import TypeAdapter

        by_role = {"developer": ChatCompletionDeveloperMessageParam, "system": ChatCompletionSystemMessageParam,
                   "user": ChatCompletionUserMessageParam, "assistant": ChatCompletionAssistantMessageParam,
                   "tool": ChatCompletionToolMessageParam}
        _MESSAGE_TYPES.update(
            keys=OpenAIMessages.__required_keys__, messages=TypeAdapter(list[ChatCompletionMessageParam]),
            calls=TypeAdapter(list[ChatCompletionMessageFunctionToolCallParam]),
            tools=TypeAdapter(list[ChatCompletionFunctionToolParam] | None),
            fields={r: t.__required_keys__ | t.__optional_keys__ for r, t in by_role.items()})
    return _MESSAGE_TYPES


def _check_messages_row(row: Any) -> str | None:
    t = _message_types()
    if not isinstance(row, dict) or not t["keys"] <= row.keys():
        return f"not an OpenAIMessages row: needs {sorted(t['keys'])}"
    msgs = row["messages"]
    t["messages"].validate_python(msgs)  # raises ValidationError with the field
    t["tools"].validate_python(row["tools"])
    for i, m in enumerate(msgs):
        extra = m.keys() - t["fields"].get(m["role"], m.keys())
        if extra:
            return f"messages[{i}]: {sorted(extra)} not fields of the {m['role']} message type"
        if m.get("tool_calls") is not None:
            t["calls"].validate_python(m["tool_calls"])  # its Iterable field is not checked by the union
    if not msgs or msgs[-1]["role"] != "assistant":
        return "the last message is not the assistant turn"
    return None


def _check_al_row(p: Path, row: Any) -> str | None:
    import agentlightning as agl

    name = p.relative_to(p.parents[1]).as_posix().lower() if len(p.parents) > 1 else p.name.lower()
    if "triplet" in name:
        fields = row if isinstance(row, dict) else {}
        agl.Triplet(**{k: fields.get(k) for k in ("prompt", "response", "reward", "metadata") if k in fields})
        return None
    if "spans" in name:
        agl.Span.model_validate(row)
        return None
    return _check_messages_row(row)


def check_agentlightning(bundle: Path) -> dict[str, Any]:
    """Agent Lightning export files are consumed by Agent Lightning's own types."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    files = _al_files(bundle)
    if not files:
        return {"ok": False, "files": {}, "problems": [(f"{bundle}: no Agent Lightning export (files naming "
                                                        f"{', '.join(AL_MARKERS)})")]}
    counts, problems = {}, []
    for p in files:
        n = 0
        for line in iter_lines(p):
            try:
                why = line.error or _check_al_row(p, line.obj)
            except Exception as exc:  # noqa: BLE001 - a type that rejects the row is the finding
                why = f"{type(exc).__name__}: {str(exc)[:200]}"
            if why:
                problems.append(f"{p}:{line.lineno}: {why}")
            n += 1
        counts[p.relative_to(bundle).as_posix()] = n
    return {"ok": not problems, "files": counts, "problems": problems[:20]}


def check_bundle(bundle: Path) -> dict[str, dict[str, Any]]:
    """All consumer checks of one bundle."""
    return {"views_parse": check_views_parse(bundle), "trl_formatting": check_trl_formatting(bundle),
            "agentlightning": check_agentlightning(bundle)}
