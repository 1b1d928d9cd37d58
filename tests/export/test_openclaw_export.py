"""Imported OpenClaw sessions → a bundle with conversational worker rows: one per span of plain
assistant turns (or per turn), the conversation so far as the prompt, tool calls in TRL's format, lineage into the traces,
recoveries, Telegram feedback in ``meta.labels``, and rows TRL's chat-template path accepts."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.importers.conftest import HOME
from tracebridge.config import load_config
from tracebridge.export.config import ExportConfig, FeedbackConfig
from tracebridge.export.labels import feedback_source
from tracebridge.export.pipeline import ExportResult, export_traces
from tracebridge.importers.openclaw import import_openclaw
from tracebridge.schema import roles

ROOT = Path(__file__).resolve().parents[2]
MAIN_RUN = "oc-5f0c2d1e-6b7a-4c3d-9e8f-0a1b2c3d4e5f"


def default_cfg() -> ExportConfig:
    return load_config(ExportConfig, ROOT / "configs/export/default.yaml")


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("oc") / "traces"
    import_openclaw([HOME], out)
    return out


@pytest.fixture(scope="module")
def bundle(traces: Path, tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    return export_traces(traces, tmp_path_factory.mktemp("oc_bundles"), default_cfg())


def rows(res: ExportResult, view: str) -> list[dict[str, Any]]:
    return [json.loads(line) for p in sorted((res.path / "views" / view).glob("*.jsonl"))
            for line in p.read_text().splitlines()]


def run_events(traces: Path) -> dict[str, dict[str, dict[str, Any]]]:
    return {d.name: {e["event_id"]: e for e in map(json.loads, (d / "events.jsonl").read_text().splitlines())}
            for d in traces.iterdir() if (d / "events.jsonl").is_file()}


def test_openclaw_runs_give_worker_rows_and_counts_reconcile(bundle: ExportResult, traces: Path) -> None:
    rep = bundle.report
    assert rep["passed"] and rep["runs"]["read"] == 5 == rep["runs"]["accepted"]
    events = run_events(traces)
    # every assistant turn that called tools or answered is one row; truncated/error/aborted are not
    decisions = Counter(r for r, evs in events.items() for e in evs.values()
                        if e["event_type"] == "worker_action" and e["payload"]["action"] in ("tool_call", "respond"))
    sft = rows(bundle, "worker_sft")
    assert Counter(r["meta"]["run_id"] for r in sft) == decisions and sum(decisions.values()) == 9
    assert sum(rep["rows"]["worker_sft"].values()) == len(sft)
    sessions = {d.name: json.loads((d / "session.json").read_text()) for d in traces.iterdir() if (d / "session.json").is_file()}
    split_of: dict[str, set[str]] = {}
    for r in sft:
        m, evs = r["meta"], events[r["meta"]["run_id"]]
        assert m["event_ids"] and all(e in evs for e in m["event_ids"])  # lineage into the traces
        goal = sessions[m["run_id"]]["goal"]  # split family = chat kind + goal (split.by_goal_sources)
        assert m["goal_family"] == f"{goal['family']}/{goal['goal_hash'][:8]}" and m["source"] == "openclaw"
        split_of.setdefault(m["goal_family"], set()).add(m["split"])
        msgs = r["messages"]
        assert msgs[0]["role"] == "user" and msgs[-1]["role"] == "assistant"  # no system prompt recorded
        assert evs[m["event_ids"][-1]]["event_type"] != "planner_input"
    assert {f.split("/")[0] for f in split_of} == {"openclaw"} and all(len(s) == 1 for s in split_of.values())
    assert rep["leakage"]["passed"]


def test_conversation_tool_calls_and_results_in_trl_format(bundle: ExportResult, traces: Path) -> None:
    events = run_events(traces)[MAIN_RUN]
    main = [r for r in rows(bundle, "worker_sft") if r["meta"]["run_id"] == MAIN_RUN]
    answer = next(r for r in main if r["messages"][-1]["content"] == "The deploy succeeded at 09:58.")
    assert [m["role"] for m in answer["messages"]] == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert answer["messages"][0]["content"] == "please check the deploy logs"
    for call_msg, tool_msg in zip(answer["messages"][1::2], answer["messages"][2::2]):
        (tc,) = call_msg["tool_calls"]
        call = next(e for e in events.values() if e["event_type"] == "worker_tool_call"
                    and e["payload"]["call_id"] == tc["id"])
        assert tc["type"] == "function" and tc["function"]["name"] == call["payload"]["tool"]
        assert json.loads(tc["function"]["arguments"]) == call["payload"]["args"]  # JSON string, Arrow-safe
        assert tool_msg["tool_call_id"] == tc["id"] and tool_msg["name"] == tc["function"]["name"]
    assert "ENOENT" in answer["messages"][2]["content"] and answer["messages"][4]["content"] == "deploy ok at 09:58"
    assert all("Look at the log file first." not in json.dumps(r["messages"]) for r in main)  # thinking left out
    second_turn = next(r for r in main if r["messages"][-1].get("tool_calls", [{}])[0].get("id") == "toolu_03")
    assert second_turn["messages"][-2] == {"role": "user", "content": "and the cron status?"}
    # after the compaction: its summary, then the kept entries on; reaction lines are feedback, not prompt
    after = next(r for r in main if r["messages"][-1].get("tool_calls", [{}])[0].get("function", {}).get("name")
                 == "browser")
    assert after["messages"][0]["content"] == (  # as pi-coding-agent's convertToLlm gave it to the model
        "The conversation history before this point was compacted into the following summary:\n\n<summary>\n"
        + after["messages"][0]["content"].split("<summary>\n", 1)[1])
    assert after["messages"][0]["content"].endswith("deploy ok; cron check timed out.\n</summary>")
    assert after["messages"][1]["content"] == "and the cron status?"
    assert "Telegram reaction" not in json.dumps(after["messages"]) and "backup done" in json.dumps(after["messages"])


def test_tool_error_then_other_call_is_a_recovery_case(bundle: ExportResult) -> None:
    (sft,) = rows(bundle, "worker_recovery_cases/sft")
    (pair,) = rows(bundle, "worker_recovery_cases/pairs")
    assert sft["meta"]["labels"]["recovery"] is True and sft["meta"]["labels"]["failed_attempts"] == 1
    chosen = json.loads(pair["chosen"][0]["tool_calls"][0]["function"]["arguments"])
    rejected = json.loads(pair["rejected"][0]["tool_calls"][0]["function"]["arguments"])
    assert chosen == {"path": "/home/u/proj/deploy.log"} and rejected == {"path": "/var/log/deploy.log"}
    assert pair["prompt"] == sft["messages"][:-1] and pair["prompt"][-1]["role"] == "tool"
    # a failing call that is not followed by another successful call is no recovery
    assert sum(r["meta"]["labels"].get("recovery") is True for r in rows(bundle, "worker_sft")) == 1


def test_context_is_capped_at_a_user_turn(traces: Path, tmp_path: Path) -> None:
    cfg = default_cfg()
    cfg = replace(cfg, views=replace(cfg.views, conversation_max_turns=4))
    res = export_traces(traces, tmp_path / "b", cfg)
    for r in rows(res, "worker_sft"):
        prompt = r["messages"][:-1]
        assert len(prompt) <= 4 and prompt[0]["role"] == "user" and prompt[0 if len(prompt) == 1 else 1]["role"] != "tool"
    capped = [r for r in rows(res, "worker_sft") if r["meta"]["labels"].get("context_dropped")]
    assert capped and all(r["meta"]["labels"]["context_messages"] == len(r["messages"]) - 1 for r in capped)
    assert default_cfg().views.validate() == [] and replace(default_cfg().views, conversation_max_turns=1).validate()


def test_telegram_reaction_reaches_the_reply_row(traces: Path, tmp_path: Path) -> None:
    from tracebridge.feedback import harvest_openclaw
    from tracebridge.feedback.chunks import record_batch
    from tracebridge.feedback.config import FeedbackConfig as HarvestConfig

    fb = HarvestConfig(ledger=str(tmp_path / "ledger.jsonl"), mapping=str(tmp_path / "mapping.json"),
                       registry=str(tmp_path / "registry.jsonl"), harvest_log=str(tmp_path / "log.jsonl"),
                       quarantine=str(tmp_path / "q.jsonl"))
    harvest_openclaw(fb, [HOME])
    (reaction,) = [json.loads(line) for line in Path(fb.ledger).read_text().splitlines()]
    assert reaction["message_id"] == 901 and reaction["emoji"] == "👍"
    reply = f"{MAIN_RUN}:a0000010.1"  # "The deploy succeeded at 09:58." was sent as message 901
    assert reaction["chat"] != 4242  # a direct chat's id is its user's: the ledger keeps the pseudonym
    record_batch(fb.registry, 4242, [901], MAIN_RUN, reply)  # as the runtime records it: the chat id it sent to
    cfg = replace(default_cfg(), feedback=FeedbackConfig(fb.ledger, fb.mapping, fb.registry))
    res = export_traces(traces, tmp_path / "b", cfg, labels_for_run=feedback_source(cfg.feedback))  # as the CLI
    sft = rows(res, "worker_sft")
    (row,) = [r for r in sft if reply in r["meta"]["event_ids"]]
    assert row["meta"]["labels"]["feedback_score"] == 1.0 and json.loads(row["meta"]["labels"]["feedback"])["n"] == 1
    assert all("feedback_score" not in r["meta"]["labels"] for r in sft if r["meta"]["run_id"] != MAIN_RUN)
    # the session's other replies were not judged: one reaction used to score every row of the session
    others = [r for r in sft if r["meta"]["run_id"] == MAIN_RUN and reply not in r["meta"]["event_ids"]]
    assert others and all("feedback_score" not in r["meta"]["labels"] for r in others)
    assert res.report["feedback"]["runs_labelled"] == 1


def test_rows_load_with_datasets_and_format_through_the_train_path(bundle: ExportResult) -> None:
    import datasets
    from trl.data_utils import is_conversational, maybe_apply_chat_template

    from tracebridge.train.data import load_role_data, to_pref_records, to_sft_records
    from tracebridge.train.models import train_tiny_tokenizer

    datasets.disable_progress_bars()
    for p in sorted((bundle.path / "views").rglob("*.jsonl")):
        ds = datasets.load_dataset("json", data_files=str(p), split="train", cache_dir=str(bundle.path.parent / ".hf"))
        assert len(ds) == len(p.read_text().splitlines()) > 0
    tok = train_tiny_tokenizer(512)
    data = load_role_data(bundle.path, "worker")
    assert not data.quarantined and len(data.sft) == 9 and len(data.recovery_sft) == len(data.pref) == 1
    sft = datasets.Dataset.from_list(to_sft_records(data.sft))
    texts = []
    for ex in sft:  # conversation windows train on their last turn: prompt/completion records
        assert is_conversational(ex) and ex["completion"][0]["role"] == "assistant"
        out = maybe_apply_chat_template({"prompt": ex["prompt"], "completion": ex["completion"]}, tok,
                                        tools=json.loads(ex["tools"]))
        texts.append(out["prompt"] + out["completion"])
    joined = "\n".join(texts)
    assert '<tool_call>{"name": "read", "arguments": {"path":"/home/u/proj/deploy.log"}}</tool_call>' in joined
    assert "<|im_start|>tool\ndeploy ok at 09:58<|im_end|>" in joined and "Tools:" in joined
    (pref,) = to_pref_records(data.pref)
    out = maybe_apply_chat_template({k: pref[k] for k in ("prompt", "chosen", "rejected")}, tok,
                                    tools=json.loads(pref["tools"]))
    assert "/var/log/deploy.log" in out["rejected"] and "/home/u/proj/deploy.log" in out["chosen"]


def _ev(i: str, et: str, parent: str | None, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"run_id": "r", "event_id": f"r:{i}", "event_type": et, "parent_event_id": parent and f"r:{parent}",
            "payload": payload, **extra}


def _two_call_turn() -> list[dict[str, Any]]:
    """A user turn; one assistant turn with two calls (one fails); a turn redoing both, then an answer."""
    call = {"action": "tool_call", "reasoning_summary": "think first"}
    return [
        _ev("u", "planner_input", None, {"goal": "sync a and b"}),
        _ev("a1", "worker_action", "u", call, llm={"response": "Syncing both."}),
        _ev("a1.1", "worker_tool_call", "a1", {"call_id": "c1", "tool": "sync", "args": {"x": "a"}}),
        _ev("a1.2", "worker_tool_call", "a1", {"call_id": "c2", "tool": "sync", "args": {"x": "b"}}),
        _ev("t1", "worker_tool_result", "a1.1", {"call_id": "c1", "ok": True, "output": "a synced"}),
        _ev("t2", "worker_tool_result", "a1.2", {"call_id": "c2", "ok": False, "output": "b locked",
                                                 "error": {"kind": "permission", "message": "b locked"}}),
        _ev("a2", "worker_action", "t2", {"action": "tool_call"}, llm={"response": ""}),
        _ev("a2.1", "worker_tool_call", "a2", {"call_id": "c3", "tool": "sync", "args": {"x": "b", "force": True}}),
        _ev("t3", "worker_tool_result", "a2.1", {"call_id": "c3", "ok": True, "output": {"text": "b synced"}}),
        _ev("a3", "worker_action", "t3", {"action": "respond"}),
        _ev("a3.1", "worker_output", "a3", {"result": "Both synced."}),
    ]


def test_parallel_calls_results_and_recovery_in_one_turn() -> None:
    from tracebridge.export.config import ViewsConfig
    from tracebridge.export.views import RunContext, build_views

    ctx = RunContext("r", "openclaw/chat", "train", "openclaw", None)
    views, _ = build_views(_two_call_turn(), ctx, ViewsConfig(json_strings=False))
    first, second, answer = views["worker_sft"]
    assert first["messages"][-1] == {"role": "assistant", "content": "Syncing both.", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "sync", "arguments": {"x": "a"}}},
        {"id": "c2", "type": "function", "function": {"name": "sync", "arguments": {"x": "b"}}}]}
    assert first["meta"]["labels"]["tool_ok"] is False and first["meta"]["event_ids"] == [
        "r:u", "r:a1", "r:a1.1", "r:a1.2", "r:t1", "r:t2"]
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "tool", "tool", "assistant"]
    assert [m["content"] for m in second["messages"][2:4]] == ["a synced", "b locked"]
    assert second["meta"]["labels"]["recovery"] is True and second["meta"]["labels"]["failed_attempts"] == 1
    (pair,) = views["worker_recovery_cases/pairs"]
    assert pair["rejected"][0]["tool_calls"][0]["function"]["arguments"] == {"x": "b"}
    assert answer["messages"][-1] == {"role": "assistant", "content": "Both synced."}
    assert answer["messages"][-2]["content"] == "b synced"
    with_thinking, _ = build_views(_two_call_turn(), ctx, ViewsConfig(include_reasoning=True))
    assert with_thinking["worker_sft"][0]["messages"][-1]["content"] == "<think>think first</think>\nSyncing both."


def test_a_failed_result_is_labelled_by_call_id_and_eval_sees_it() -> None:
    """OpenClaw's isError (payload.ok false) on a result whose text does not say "error": the content stays
    what the agent saw, the row's labels.failed_tool_calls names the call, and error_recurrence counts it."""
    from tracebridge.eval import metrics as M
    from tracebridge.export.config import ViewsConfig
    from tracebridge.export.views import RunContext, build_views

    events = _two_call_turn()
    events[5]["payload"] = {"call_id": "c2", "ok": False, "output": "Command exited with code 1"}
    views, _ = build_views(events, RunContext("r", "openclaw/chat", "train", "openclaw", None), ViewsConfig())
    first, second, answer = views["worker_sft"]
    assert "failed_tool_calls" not in first["meta"]["labels"]  # no failed result in the row
    assert second["messages"][3] == {"role": "tool", "tool_call_id": "c2", "name": "sync",
                                     "content": "Command exited with code 1"}  # no marker in the message
    assert second["meta"]["labels"]["failed_tool_calls"] == answer["meta"]["labels"]["failed_tool_calls"] == ["c2"]
    (pair,) = views["worker_recovery_cases/pairs"]
    assert pair["meta"]["labels"]["failed_tool_calls"] == ["c2"]
    failed = M.failed_tool_calls(views["worker_sft"])["r"]
    assert M.failed_calls(answer["messages"][:-1], failed) == [("sync", '{"x": "b"}')]
    repeat = roles.tool_call_text("sync", {"x": "b"})
    assert M.worker_item(repeat, second["messages"][-1], second["messages"][:-1], None, failed)["error_recurrence"] \
        == (1.0, 1.0)


def test_bundle_rows_name_the_failed_openclaw_result(bundle: ExportResult) -> None:
    from tracebridge.eval import metrics as M

    sft = rows(bundle, "worker_sft")
    failed = M.failed_tool_calls(sft)
    # isError in the session: the ENOENT read, and "Command timed out after 5s" (no "error" in its text)
    assert failed == {MAIN_RUN: frozenset({"toolu_01", "toolu_03"})}
    (rec,) = rows(bundle, "worker_recovery_cases/sft")
    assert M.failed_calls(rec["messages"][:-1], failed[MAIN_RUN]) == [("read", '{"path": "/var/log/deploy.log"}')]


def test_failed_call_ids_load_as_lists_and_old_string_ids_still_read(bundle: ExportResult, tmp_path: Path) -> None:
    """``labels.failed_tool_calls`` is typed (labels.py): rows loaded with ``datasets`` hold a list of call
    ids. Bundles exported before held it as a JSON string; the eval reads both to the same call ids."""
    import datasets

    from tracebridge.eval import metrics as M

    datasets.disable_progress_bars()

    def load(path: Path) -> list[dict[str, Any]]:  # one file per split, as ops/consumers.py loads them
        return list(datasets.load_dataset("json", data_files=str(path), split="train",
                                          cache_dir=str(tmp_path / "hf" / path.name)))

    new, old = [], []
    for path in sorted((bundle.path / "views" / "worker_sft").glob("*.jsonl")):
        new += load(path)
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        for r in lines:  # the rows as an earlier export wrote them: the ids as a JSON string
            if "failed_tool_calls" in r["meta"]["labels"]:
                r["meta"]["labels"]["failed_tool_calls"] = json.dumps(r["meta"]["labels"]["failed_tool_calls"])
        earlier = tmp_path / f"old_{path.name}"
        earlier.write_text("".join(json.dumps(r) + "\n" for r in lines))
        old += load(earlier)
    named = [r["meta"]["labels"]["failed_tool_calls"] for r in new if r["meta"]["labels"].get("failed_tool_calls")]
    assert len(named) == 4 and all(isinstance(ids, list) and all(isinstance(i, str) for i in ids) for ids in named)
    assert all(isinstance(r["meta"]["labels"]["failed_tool_calls"], str) for r in old
               if r["meta"]["labels"].get("failed_tool_calls"))
    want = {MAIN_RUN: frozenset({"toolu_01", "toolu_03"})}
    assert M.failed_tool_calls(new) == want == M.failed_tool_calls(old)


def _plain_turns() -> list[dict[str, Any]]:
    """Two user turns of plain tool calls (no failure): ls, cat, answer; then cat, a truncated reply, answer."""
    call = {"action": "tool_call"}
    return [
        _ev("u", "planner_input", None, {"goal": "what is in notes.txt?"}),
        _ev("a1", "worker_action", "u", call, llm={"response": "Listing."}),
        _ev("a1.1", "worker_tool_call", "a1", {"call_id": "c1", "tool": "ls", "args": {}}),
        _ev("t1", "worker_tool_result", "a1.1", {"call_id": "c1", "ok": True, "output": "notes.txt"}),
        _ev("a2", "worker_action", "t1", call, llm={"response": ""}),
        _ev("a2.1", "worker_tool_call", "a2", {"call_id": "c2", "tool": "cat", "args": {"path": "notes.txt"}}),
        _ev("t2", "worker_tool_result", "a2.1", {"call_id": "c2", "ok": True, "output": "buy milk"}),
        _ev("a3", "worker_action", "t2", {"action": "respond"}),
        _ev("a3.1", "worker_output", "a3", {"result": "It says: buy milk."}),
        _ev("v", "planner_input", "a3.1", {"goal": "and todo.txt?"}),
        _ev("b1", "worker_action", "v", call, llm={"response": ""}),
        _ev("b1.1", "worker_tool_call", "b1", {"call_id": "c3", "tool": "cat", "args": {"path": "todo.txt"}}),
        _ev("t3", "worker_tool_result", "b1.1", {"call_id": "c3", "ok": True, "output": "call mom"}),
        _ev("b2", "worker_action", "t3", {"action": "truncated"}),
        _ev("b2.1", "worker_output", "b2", {"result": "It says: ca"}),
        _ev("b3", "worker_action", "b2.1", {"action": "respond"}),
        _ev("b3.1", "worker_output", "b3", {"result": "It says: call mom."}),
    ]


def test_plain_turns_of_a_user_turn_are_one_span_row_with_every_turn_a_target() -> None:
    from tracebridge.export.config import ViewsConfig
    from tracebridge.export.views import RunContext, build_views, target_turns

    ctx = RunContext("r", "openclaw/chat", "train", "openclaw", True)
    views, _ = build_views(_plain_turns(), ctx, ViewsConfig(json_strings=False))
    first, second, third = views["worker_sft"]  # turn 1 whole; turn 2 split by the truncated reply
    assert [m["role"] for m in first["messages"]] == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert first["meta"]["labels"]["context_messages"] == 1 and first["meta"]["labels"]["target_turns"] == 3
    assert first["meta"]["labels"]["tool_ok"] is True and first["meta"]["event_ids"] == [
        "r:u", "r:a1", "r:a1.1", "r:t1", "r:a2", "r:a2.1", "r:t2", "r:a3", "r:a3.1"]
    assert target_turns(first) == [1, 3, 5]
    # the cat before the truncated reply is a row; the truncated reply is context of the answer only
    assert second["messages"][-1]["tool_calls"][0]["id"] == "c3" and "target_turns" not in second["meta"]["labels"]
    assert second["messages"][:6] == first["messages"] and second["messages"][6]["content"] == "and todo.txt?"
    assert third["messages"][-2] == {"role": "assistant", "content": "It says: ca"}
    assert third["messages"][-1]["content"] == "It says: call mom." and target_turns(third) == [len(third["messages"]) - 1]
    # Agent Lightning triplets stay one per model call: the span gives one per target turn
    trip = [t for t in views["agentlightning/triplets"] if t["metadata"]["role"] == "worker"]
    assert [len(t["prompt"]) for t in trip[:3]] == [1, 3, 5] and trip[2]["response"]["content"] == "It says: buy milk."
    assert len(trip) == 5
    # one row per turn on request; a turn with feedback of its own is a row of its own
    per_turn, _ = build_views(_plain_turns(), ctx, ViewsConfig(json_strings=False, conversation_rows="turn"))
    assert len(per_turn["worker_sft"]) == 5 and [t["response"] for t in per_turn["agentlightning/triplets"]] == \
        [t["response"] for t in views["agentlightning/triplets"]]
    fb = RunContext("r", "openclaw/chat", "train", "openclaw", True,
                    feedback={"events": {"r:a3.1": {"feedback_score": -1.0}}})
    rows_fb = build_views(_plain_turns(), fb, ViewsConfig(json_strings=False))[0]["worker_sft"]
    assert [r["meta"]["labels"].get("target_turns") for r in rows_fb[:2]] == [2, None]
    assert rows_fb[1]["meta"]["labels"]["feedback_score"] == -1.0 and rows_fb[1]["meta"]["labels"]["context_messages"] == 5
    assert "feedback_score" not in rows_fb[0]["meta"]["labels"]
    # a span holds at most half the cap; the rest of the row is context
    capped = build_views(_plain_turns(), ctx, ViewsConfig(json_strings=False, conversation_max_turns=4))[0]["worker_sft"]
    assert [r["meta"]["labels"].get("target_turns") for r in capped[:2]] == [None, None]
    assert all(len(r["messages"]) <= 5 for r in capped)


def test_only_conversational_sources_get_conversation_rows() -> None:
    from tracebridge.export.config import ViewsConfig
    from tracebridge.export.views import RunContext, build_views

    for source, cfg in (("agentlightning", ViewsConfig()), ("openclaw", ViewsConfig(conversational_sources=[]))):
        views, _ = build_views(_two_call_turn(), RunContext("r", "f", "train", source, None), cfg)
        assert views["worker_sft"] == []  # no worker_input: the per-decision builder finds no step


def test_one_bot_user_sessions_spread_over_the_splits_by_goal(tmp_path: Path) -> None:
    """Forty Telegram sessions of one bot (one chat kind): split by goal, not all in one split;
    sessions that open with the same message stay in one split (no goal leak)."""
    from tracebridge.curate.config import SplitConfig
    from tracebridge.curate.split import assign_families
    from tracebridge.export.families import split_family as _family

    def session(i: int) -> dict[str, Any]:
        return {"goal": {"family": "openclaw/telegram", "goal_hash": f"{i % 30:08x}" + "0" * 56}, "source": {"kind": "openclaw"}}

    fams = Counter(_family(session(i), ["openclaw"]) for i in range(40))
    assert len(fams) == 30 and fams[f"openclaw/telegram/{0:08x}"] == 2
    assert set(assign_families(dict(fams), SplitConfig()).values()) == {"train", "validation", "test"}
    assert _family(session(0)) == "openclaw/telegram"  # without the key: one family, one split
    sim = {"goal": {"family": "calc", "goal_hash": "ab" * 32}, "source": {"kind": "sim"}}
    assert _family(sim, ["openclaw"]) == "calc"


def test_views_without_rows_are_listed_empty_not_left_out(bundle: ExportResult) -> None:
    """OpenClaw sessions give no planner or verifier rows: the report and ``export --json`` list those
    views with zeros (they were left out, so a user saw four views of five and wondered where the rest went)."""
    rows_by_view = bundle.summary()["rows"]
    for view in ("planner_sft", "verifier_sft", "verifier_pref_pairs"):
        assert rows_by_view[view] == {"train": 0, "validation": 0, "test": 0}
        assert not (bundle.path / "views" / view).exists()
        assert f"| {view} | 0 | 0 | 0 | 0 |" in (bundle.path / "report.md").read_text()
    assert sum(rows_by_view["worker_sft"].values()) > 0
