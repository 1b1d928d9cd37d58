"""The worker setting cpu_tiny.yaml documents fits the simulator's worker rows.

The config said sim worker rows "run ~700 tokens" and showed ``role=worker`` without a longer
``max_length``: at 1,024 a fifth of the smoke bundle's worker rows and most recovery pairs were
dropped by TRL, and ``--variants baseline,optimized`` failed the optimized DPO on
``data.max_rows_dropped``. The header now names the lengths to use; this checks they hold.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tracebridge.train.data import to_pref_records, to_sft_records
from tracebridge.train.models import tiny_model_and_tokenizer

ROOT = Path(__file__).resolve().parents[2]


def _rows(bundle: Path, view: str) -> list[dict]:
    return [json.loads(line) for f in sorted((bundle / "views" / view).glob("*.jsonl"))
            for line in f.read_text().splitlines()]


def _tokens(tok, messages: list[dict], tools: str | None) -> int:
    for m in messages:  # the records keep arguments as JSON strings; the template takes objects
        for tc in m.get("tool_calls") or []:
            tc["function"]["arguments"] = json.loads(tc["function"]["arguments"])
    ids = tok.apply_chat_template(messages, tools=json.loads(tools) if tools else None, tokenize=True)
    return len(ids if isinstance(ids, list) else ids["input_ids"])


def test_documented_worker_max_length_fits_every_sim_worker_row_and_pair(sim_bundle: Path) -> None:
    header = (ROOT / "configs/train/cpu_tiny.yaml").read_text().split("\nrole:")[0]
    override = re.search(r"role=worker .*train\.max_length=(\d+) dpo\.max_length=(\d+)", header)
    assert override, "cpu_tiny.yaml's header shows role=worker with its train/dpo max_length"
    sft_max, dpo_max = int(override.group(1)), int(override.group(2))
    _, tok = tiny_model_and_tokenizer()
    sft = [_tokens(tok, r["messages"], r["tools"]) for r in to_sft_records(_rows(sim_bundle, "worker_sft"))]
    pairs = [max(_tokens(tok, r["prompt"] + r[k], r.get("tools")) for k in ("chosen", "rejected"))
             for r in to_pref_records(_rows(sim_bundle, "worker_recovery_cases/pairs"))]
    assert sft and pairs
    assert max(sft) <= sft_max and max(pairs) <= dpo_max, (max(sft), max(pairs))
