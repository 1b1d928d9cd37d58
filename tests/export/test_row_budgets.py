"""Character budgets of conversational worker rows (``views.context_max_chars``,
``views.tool_output_max_chars``): rows fit, start at a user turn and keep every target; tool results
keep head and tail (8000 characters by default, 0 = whole), each cut counted once with the characters
it removed; assistant turns (targets) are never cut; part of the export cache key."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.export.test_openclaw_export import _ev, rows
from tests.importers.conftest import HOME
from tracebridge.export.config import ExportConfig, ViewsConfig
from tracebridge.export.conversation_window import _chars
from tracebridge.export.pipeline import export_traces
from tracebridge.export.views import RunContext, build_views
from tracebridge.importers.openclaw import import_openclaw

CTX = RunContext("r", "openclaw/chat", "train", "openclaw", True)


def _long_chat(turns: int = 5, calls: int = 3, out: int = 900, ask: int = 100) -> list[dict[str, Any]]:
    """``turns`` user turns of ``ask`` characters, each ``calls`` tool calls with ``out``-character results,
    then an answer."""
    evs, prev = [], None
    for t in range(turns):
        evs.append(_ev(f"u{t}", "planner_input", prev, {"goal": f"task {t}: " + "q" * ask}))
        prev = f"u{t}"
        for c in range(calls):
            a = f"a{t}.{c}"
            evs += [_ev(a, "worker_action", prev, {"action": "tool_call"}, llm={"response": f"step {t}.{c}"}),
                    _ev(f"{a}.1", "worker_tool_call", a, {"call_id": f"c{t}.{c}", "tool": "read", "args": {"n": c}}),
                    _ev(f"{a}.r", "worker_tool_result", f"{a}.1",
                        {"call_id": f"c{t}.{c}", "ok": True, "output": f"<{t}.{c}>" + "x" * out + f"</{t}.{c}>"})]
            prev = f"{a}.r"
        evs += [_ev(f"e{t}", "worker_action", prev, {"action": "respond"}),
                _ev(f"e{t}.1", "worker_output", f"e{t}", {"result": f"done {t}"})]
        prev = f"e{t}.1"
    return evs


def _split(r: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    n = r["meta"]["labels"]["context_messages"]
    return r["messages"][:n], r["messages"][n:]


@pytest.mark.parametrize("mode", ["span", "turn"])
def test_context_fits_the_budget_at_a_user_turn_and_keeps_every_target(mode: str) -> None:
    plain, _ = build_views(_long_chat(), CTX, ViewsConfig(conversation_rows=mode))
    fit, stats = build_views(_long_chat(), CTX, ViewsConfig(conversation_rows=mode, context_max_chars=2500))
    assert len(fit["worker_sft"]) == len(plain["worker_sft"])
    for p, f in zip(plain["worker_sft"], fit["worker_sft"]):
        (pc, pt), (fc, ft) = _split(p), _split(f)
        assert ft == pt and sum(_chars(m) for m in fc) <= 2500  # targets whole, context within the budget
        assert fc == pc[len(pc) - len(fc):] or (fc[0] == [m for m in pc if m["role"] == "user"][-1]
                                                and fc[1:] == pc[len(pc) - len(fc) + 1:])
        assert fc[0]["role"] == "user" and (len(fc) == 1 or fc[1]["role"] != "tool")
        dropped = (f["meta"]["labels"].get("context_dropped") or 0) - (p["meta"]["labels"].get("context_dropped") or 0)
        assert dropped == len(pc) - len(fc)
    trimmed = sum(len(_split(f)[0]) < len(_split(p)[0]) for p, f in zip(plain["worker_sft"], fit["worker_sft"]))
    assert trimmed > 0 and stats["context_max_chars"] == trimmed and stats["context_over_budget"] == 0
    assert "context_max_chars" not in build_views(_long_chat(), CTX, ViewsConfig())[1]  # off: nothing counted


def test_one_long_turn_keeps_its_user_message_and_a_user_turn_over_budget_is_kept_and_counted() -> None:
    one_turn, _ = build_views(_long_chat(turns=1, calls=8), CTX, ViewsConfig(conversation_rows="turn",
                                                                              context_max_chars=2500))
    last = one_turn["worker_sft"][-1]
    ctx, _ = _split(last)
    assert ctx[0]["content"].startswith("task 0") and ctx[1]["role"] == "assistant" and len(ctx) < 17
    assert last["meta"]["labels"]["context_dropped"] == 17 - len(ctx)  # user + 8 calls and results
    # the user turn alone is over the budget: the row keeps that minimal context and is counted
    views, stats = build_views(_long_chat(turns=2, ask=300), CTX, ViewsConfig(context_max_chars=200))
    assert all(_split(r)[0] == [r["messages"][0]] for r in views["worker_sft"])
    assert stats["context_over_budget"] == len(views["worker_sft"]) > 0


def test_tool_output_keeps_head_and_tail_with_a_marker() -> None:
    views, stats = build_views(_long_chat(turns=2, out=1000), CTX, ViewsConfig(tool_output_max_chars=300))
    full = "<0.1>" + "x" * 1000 + "</0.1>"
    want = full[:200] + f"\n[… {len(full) - 300} characters cut …]\n" + full[-100:]
    first, second = views["worker_sft"][:2]
    assert [m["content"] for m in first["messages"] if m["role"] == "tool"][1] == want  # between targets
    assert [m["content"] for m in second["messages"] if m["role"] == "tool"][1] == want  # in the context
    assert all(len(m["content"]) == 300 + len(f"\n[… {len(full) - 300} characters cut …]\n")
               for r in views["worker_sft"] for m in r["messages"] if m["role"] == "tool")
    assert stats["tool_output_max_chars"] == len(views["worker_sft"])
    short, _ = build_views(_long_chat(turns=2, out=10), CTX, ViewsConfig(tool_output_max_chars=300))
    assert short == build_views(_long_chat(turns=2, out=10), CTX, ViewsConfig())[0]  # shorter results whole
    again, _ = build_views(_long_chat(turns=2, out=1000), CTX, ViewsConfig(tool_output_max_chars=300))
    assert again == views  # deterministic


def test_budgets_are_validated() -> None:
    assert ViewsConfig(context_max_chars=6000, tool_output_max_chars=200).validate() == []
    probs = ViewsConfig(context_max_chars=-1, tool_output_max_chars=150).validate()
    assert probs[0] == "views.context_max_chars=-1: must be >= 0 (0 = no budget)"
    assert probs[1].startswith("views.tool_output_max_chars=150: under 200 characters") and "not tokens" in probs[1]


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("oc_budget") / "traces"
    import_openclaw([HOME], out)
    return out


def _cfg(**views: int) -> ExportConfig:
    cfg = ExportConfig()
    return replace(cfg, views=replace(cfg.views, **views))


def test_tool_outputs_cut_by_default_0_keeps_them_whole_and_the_cache_key_follows_the_budgets(
        traces: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    plain = export_traces(traces, tmp_path / "plain", cache_dir=cache)  # defaults: tool outputs cut at 8000
    assert ExportConfig().views.tool_output_max_chars == 8000
    written = (plain.path / "export_config.yaml").read_text()
    assert "tool_output_max_chars: 8000" in written and "context_max_chars" not in written  # still opt-in
    assert plain.report["views"]["tool_outputs"] == {"max_chars": 8000, "cut": 0, "chars_cut": 0}  # on: shown
    assert plain.manifest.data["budgets"] == {"context_max_chars": 0, "tool_output_max_chars": 8000,
                                              "tool_outputs": plain.report["views"]["tool_outputs"]}
    # 0 is written (a 0 left out would read back as the default), and the bundle id records it
    zero = export_traces(traces, tmp_path / "zero", _cfg(context_max_chars=0, tool_output_max_chars=0))
    assert "tool_output_max_chars: 0" in (zero.path / "export_config.yaml").read_text()
    assert zero.manifest.bundle_id != plain.manifest.bundle_id
    assert "tool_outputs" not in zero.report["views"] and "tool_outputs" not in zero.summary()
    assert zero.manifest.data["budgets"] == {"context_max_chars": 0, "tool_output_max_chars": 0}
    assert "rows_trimmed" not in zero.report["views"] and "Tool outputs over" not in (zero.path / "report.md").read_text()
    # no output of these sessions is over 8000 characters: the default changes no row
    assert rows(zero, "worker_sft") == rows(plain, "worker_sft")

    # a cached run built without budgets is not reused by an export with them
    fit = export_traces(traces, tmp_path / "fit", _cfg(context_max_chars=300, tool_output_max_chars=200),
                        cache_dir=cache)
    assert fit.cache is not None and fit.cache["hits"] == 0 and fit.cache["misses"] == plain.cache["misses"] > 0
    assert fit.manifest.bundle_id != plain.manifest.bundle_id
    trimmed = fit.report["views"]["rows_trimmed"]
    assert trimmed["context_max_chars"] > 0 and fit.summary()["rows_trimmed"] == trimmed
    assert "## Rows trimmed to budgets" in (fit.path / "report.md").read_text()
    assert "context_max_chars: 300" in (fit.path / "export_config.yaml").read_text()
    assert any(r["meta"]["labels"].get("context_dropped") for r in rows(fit, "worker_sft"))
    warm = export_traces(traces, tmp_path / "warm", _cfg(context_max_chars=300, tool_output_max_chars=200),
                         cache_dir=cache)
    assert warm.cache is not None and warm.cache["misses"] == 0 and warm.manifest.bundle_id == fit.manifest.bundle_id
    assert json.loads((fit.path / "report.json").read_text())["views"]["rows_trimmed"] == trimmed


def _huge_chat(out: int, answer: int = 40, arg: int = 1) -> list[dict[str, Any]]:
    """``_long_chat`` (3 user turns, 2 calls each) whose first tool result is ``out`` characters (a file read,
    a log dump), whose first call's argument is ``arg`` characters and whose first answer is ``answer``."""
    evs = _long_chat(turns=3, calls=2, out=50)
    by_id = {e["event_id"]: e for e in evs}
    by_id["r:a0.0.r"]["payload"]["output"] = "<read>" + "H" * out + "</read>"
    by_id["r:a0.0.1"]["payload"]["args"] = {"n": "A" * arg}
    by_id["r:e0.1"]["payload"]["result"] = "done 0 " + "R" * answer
    return evs


def _marker_chars(text: str) -> int:
    return int(text.split("\n[… ")[1].split(" characters cut …]\n")[0])


def test_a_huge_tool_output_in_history_is_cut_once_with_a_marker_in_every_row_that_carries_it() -> None:
    """A 3 MB tool output went whole into every later row of its session (worker rows, Agent Lightning
    triplets and messages); by default it is cut to 8000 characters, head and tail, with a marker saying
    how many were cut, and counted once however many rows carry it."""
    evs = _huge_chat(3_000_000)
    full = "<read>" + "H" * 3_000_000 + "</read>"
    views, stats = build_views(evs, CTX, ViewsConfig())
    want = full[:5333] + f"\n[… {len(full) - 8000} characters cut …]\n" + full[-2667:]
    carried = [m["content"] for r in views["worker_sft"] for m in r["messages"] if m.get("tool_call_id") == "c0.0"]
    assert len(carried) == len(views["worker_sft"]) > 2 and set(carried) == {want}  # in context and between targets
    assert (stats["tool_outputs_cut"], stats["tool_output_chars_cut"]) == (1, len(full) - 8000) == (1, _marker_chars(want))
    assert stats["tool_output_max_chars"] == len(views["worker_sft"])  # rows that carry a cut
    dumped = json.dumps(views)
    assert "H" * 5334 not in dumped and dumped.count(want[-2667:]) >= 3 * len(carried)  # sft, triplets, AL messages
    assert len(dumped) < 200_000
    whole, off = build_views(evs, CTX, ViewsConfig(tool_output_max_chars=0))  # 0: whole, nothing counted
    assert len(json.dumps(whole)) > 3 * len(carried) * len(full)  # the quadratic growth the default stops
    assert not {"tool_outputs_cut", "tool_output_chars_cut", "tool_output_max_chars"} & set(off)


def _tool_contents_out(value: Any) -> Any:
    """``value`` (rows, any shape) with the content of every tool message replaced by a placeholder."""
    if isinstance(value, list):
        return [_tool_contents_out(v) for v in value]
    if isinstance(value, dict):
        return {k: "<tool>" if k == "content" and value.get("role") == "tool" else _tool_contents_out(v)
                for k, v in value.items()}
    return value


@pytest.mark.parametrize("mode", ["span", "turn"])
def test_the_budget_cuts_tool_results_only_never_an_assistant_turn(mode: str) -> None:
    """An answer and a call's arguments far over the budget stay whole, as targets and as context of later
    rows; the cut rows differ from the whole ones in tool message contents alone (every view)."""
    evs = _huge_chat(50_000, answer=30_000, arg=20_000)
    cut, stats = build_views(evs, CTX, ViewsConfig(conversation_rows=mode, tool_output_max_chars=200))
    whole, _ = build_views(evs, CTX, ViewsConfig(conversation_rows=mode, tool_output_max_chars=0))
    assert _tool_contents_out(cut) == _tool_contents_out(whole) and cut != whole
    targets = [m for r in cut["worker_sft"] for m in _split(r)[1]]
    assert any(m.get("content", "").endswith("R" * 30_000) for m in targets)
    assert any("A" * 20_000 in c["function"]["arguments"] for m in targets for c in m.get("tool_calls") or ())
    # the big result is cut (once), the 60-character ones stay whole; the counts are the markers' sum
    tools = {m["tool_call_id"]: m["content"] for r in cut["worker_sft"] for m in r["messages"] if m["role"] == "tool"}
    assert len(tools) == 6 and [k for k, c in tools.items() if "characters cut" in c] == ["c0.0"]
    assert (stats["tool_outputs_cut"], stats["tool_output_chars_cut"]) == (1, _marker_chars(tools["c0.0"]))
    assert _marker_chars(tools["c0.0"]) == len("<read>" + "H" * 50_000 + "</read>") - 200


def test_the_report_counts_reconcile_with_the_cut_markers_of_the_bundle(traces: Path, tmp_path: Path) -> None:
    """report.json views.tool_outputs, the --json summary and the manifest agree with the bundle's rows:
    ``cut`` = distinct tool results carrying a marker, ``chars_cut`` = the sum of the markers' numbers."""
    res = export_traces(traces, tmp_path / "b", _cfg(tool_output_max_chars=20))  # library: under the CLI floor
    seen: dict[tuple[str, str], str] = {}
    for r in rows(res, "worker_sft"):
        for m in r["messages"]:
            if m["role"] == "tool":
                assert seen.setdefault((r["meta"]["run_id"], m["tool_call_id"]), m["content"]) == m["content"]
    cut = [c for c in seen.values() if "characters cut …]" in c]
    want = {"max_chars": 20, "cut": len(cut), "chars_cut": sum(_marker_chars(c) for c in cut)}
    assert want["cut"] > 0 and res.report["views"]["tool_outputs"] == want
    assert res.summary()["tool_outputs"] == want and res.manifest.data["budgets"]["tool_outputs"] == want
    assert res.report["views"]["rows_trimmed"]["tool_output_max_chars"] > 0
    assert f"{want['cut']} cut to head and tail, {want['chars_cut']} characters cut" in (res.path / "report.md").read_text()
