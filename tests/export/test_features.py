"""The row types behind ``features.json`` and the dataset card (``tracebridge.export.features``): one
type per key over every row, and the card's YAML as ``datasets`` writes the same features."""

from __future__ import annotations

from typing import Any

from tracebridge.export.features import RowTyper, dataset_card, merge, to_features


def features(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return to_features(RowTyper().rows_type(rows, {}))


def test_a_key_absent_or_null_in_some_rows_takes_the_type_of_the_others() -> None:
    f = features([{"labels": {"a": True}}, {"labels": {"b": 1}}, {"labels": {"a": None, "b": 2.5}}])
    assert f == {"labels": {"a": {"dtype": "bool", "_type": "Value"}, "b": {"dtype": "float64", "_type": "Value"}}}


def test_values_of_two_kinds_are_json() -> None:
    f = features([{"content": "text", "args": {}}, {"content": [{"type": "text", "text": "x"}], "args": {}},
                  {"content": None, "n": 1 << 70, "flag": True, "schema": {"_type": "x"}}, {"flag": 1}])
    # args: Arrow has no empty struct; schema: datasets would read the field _type as a feature's kind
    assert f["content"] == f["args"] == f["n"] == f["flag"] == f["schema"] == {"_type": "Json"}


def test_merge_is_symmetric_in_its_fields_and_keeps_first_seen_order() -> None:
    a, b = ("struct", (("x", "string"),)), ("struct", (("y", "int64"), ("x", "null")))
    assert merge(a, b) == ("struct", (("x", "string"), ("y", "int64")))
    assert merge(("list", "null"), ("list", "int64")) == ("list", "int64") and merge(None, "null") == "null"


def test_shared_messages_are_typed_once_and_the_list_covers_every_shape() -> None:
    sys_msg, call = {"role": "system", "content": "s"}, {"role": "assistant", "content": None,
                                                         "tool_calls": [{"id": "c", "function": {"name": "f"}}]}
    rows = [{"messages": [sys_msg]}, {"messages": [sys_msg, call, {"role": "tool", "content": "ok", "tool_call_id": "c"}]}]
    msg = features(rows)["messages"]["feature"]
    assert list(msg) == ["role", "content", "tool_calls", "tool_call_id"]
    assert msg["tool_calls"]["feature"]["function"] == {"name": {"dtype": "string", "_type": "Value"}}


def test_card_yaml_is_what_datasets_writes_for_the_same_features() -> None:
    import datasets
    import yaml

    f = features([{"messages": [{"role": "user", "content": "x", "parts": [1]}], "tools": None, "raw": {"a": [1, "b"]},
                   "meta": {"labels": {"tool_mask": ["a"]}, "ids": [[1]]}}])
    card = dataset_card({"worker_sft": {"train": "views/worker_sft/train.jsonl"}}, {"worker_sft": f},
                        {"worker_sft": {"train": 1}})
    head = yaml.safe_load(card.split("---\n")[1])
    assert head["configs"] == [{"config_name": "worker_sft",
                                "data_files": [{"split": "train", "path": "views/worker_sft/train.jsonl"}]}]
    want = datasets.Features.from_dict(f)
    assert head["dataset_info"][0]["features"] == want._to_yaml_list()
    assert datasets.Features._from_yaml_list(head["dataset_info"][0]["features"]) == want


def test_a_tool_schema_is_json_whatever_its_properties() -> None:
    def tool(**props: Any) -> dict[str, Any]:
        return {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": props}}}

    f = features([{"tools": [tool(path={"type": "string"})]}, {"tools": [tool(n={"type": "integer"})]}])
    assert f["tools"]["feature"]["function"]["parameters"] == {"_type": "Json"}
