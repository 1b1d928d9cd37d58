"""TRL records keep what the exporter writes to link a tool result to its call: the calls' ``id``, a tool
message's ``tool_call_id`` and ``name``. ``_norm_message`` dropped them, so under a native template that
renders them (Llama 3.1, Mistral) training saw other prompts than evaluation, which renders the raw rows.
The ``tracebridge`` template renders no id: its text is the same with them or without."""

from __future__ import annotations

import json

from datasets import Dataset

from tracebridge.train.data import to_pref_records, to_sft_records
from tracebridge.train.models import tiny_model_and_tokenizer

# a template that renders the links, as native ones do
LINKS = ("{%- for m in messages -%}{{ m.role }}"
         "{%- if m.tool_calls -%}{%- for tc in m.tool_calls %} call {{ tc.id }}:{{ tc.function.name }}{%- endfor -%}"
         "{%- endif -%}{%- if m.tool_call_id %} for {{ m.tool_call_id }}{%- endif -%}"
         "{%- if m.name %} from {{ m.name }}{%- endif %}: {{ m.content }}\n{% endfor -%}")


def row(ids: bool) -> dict:
    call = {"type": "function", "function": {"name": "read_file", "arguments": {"path": "a"}}}
    tool = {"role": "tool", "content": '{"ok": true}'}
    if ids:
        call["id"], tool["tool_call_id"], tool["name"] = "c1", "c1", "read_file"
    msgs = [{"role": "user", "content": "read a"}, {"role": "assistant", "content": "", "tool_calls": [call]},
            tool, {"role": "assistant", "content": "done"}]
    return {"messages": msgs, "tools": None, "meta": {"run_id": "r", "split": "train", "labels": {}}}


def test_records_keep_call_ids_and_render_as_the_raw_row():
    _, tok = tiny_model_and_tokenizer()
    raw = row(ids=True)
    (rec,) = to_sft_records([raw])
    assert rec["messages"][1]["tool_calls"][0]["id"] == "c1"
    assert (rec["messages"][2]["tool_call_id"], rec["messages"][2]["name"]) == ("c1", "read_file")
    as_eval = tok.apply_chat_template(raw["messages"], chat_template=LINKS, tokenize=False)
    assert "call c1:read_file" in as_eval and "tool for c1 from read_file" in as_eval
    assert tok.apply_chat_template(rec["messages"], chat_template=LINKS, tokenize=False) == as_eval
    pair = {"prompt": raw["messages"][:3], "chosen": raw["messages"][3:], "rejected": raw["messages"][3:], "tools": None}
    assert to_pref_records([pair])[0]["prompt"][2]["tool_call_id"] == "c1"


def test_the_tracebridge_template_renders_the_same_with_ids_or_without():
    _, tok = tiny_model_and_tokenizer()
    with_ids, without = to_sft_records([row(ids=True)]), to_sft_records([row(ids=False)])
    assert "tool_call_id" not in without[0]["messages"][2] and "id" not in without[0]["messages"][1]["tool_calls"][0]
    render = lambda r: tok.apply_chat_template(r["messages"], tokenize=False)
    assert render(with_ids[0]) == render(without[0])
    # rows with and without ids make one dataset (Arrow fills the missing ones with null), rendered the same
    ds = Dataset.from_list(with_ids + without)
    got = [render(r) for r in ds]
    assert got[0] == got[1] == render(without[0]) and json.dumps(ds[1]["messages"][2]["tool_call_id"]) == "null"
