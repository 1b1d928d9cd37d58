"""One realistic session with every newer row shape current OpenClaw writes (built by
``tests/importers/openclaw_sessions.py``) through ``tracebridge import openclaw`` and
``tracebridge export``: what reaches the training views (targets, goal, context), what stays out
of them, and that the ``--json`` summaries reconcile (read = accepted + quarantined)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.importers.openclaw_sessions import SessionBuilder, text
from tracebridge.cli import app

RUN = "oc-mixed-1"
# Text that is in the transcript but never in the model's context: none may reach a view.
NEVER_IN_VIEWS = ("SHOWN-USER", "SHOWN-REPLY", "/status", "SIDE-NOTE", "ENCRYPTED", "overloaded")


def mixed_session() -> SessionBuilder:
    """A tool turn with OpenClaw's message facts, a context-free command and its injected answer,
    an encrypted line, a side note, a /new reset, an answer left by a rewind (leaf control) and the
    answer on the kept path."""
    b = SessionBuilder("mixed-1")
    b.user("check the disk usage", __openclaw={"id": "u-1", "seq": 1}, openclawDisplayContent=text("SHOWN-USER"))
    b.call("c1", "bash", {"command": "df -h"}, responseModel="claude-sonnet-4-5-20250929", responseId="msg_01")
    b.result("c1", "bash", "/dev/sda1 40%", __openclaw={"id": "t-1", "seq": 3})
    b.say("Disk is 40% full.", responseId="msg_02", diagnostics=[{"kind": "retry", "message": "overloaded"}],
          openclawDelivery={"mediaUrls": []}, openclawDisplayContent=text("SHOWN-REPLY"))
    b.context_free("/status")
    b.encrypted()
    b.user("SIDE-NOTE", side=True)
    b.reset()
    question = b.user("and the memory?")
    b.say("MEMORY-WRONG")
    b.leaf_to(question)
    b.say("Memory: 2 GB free.")
    return b


def _cli(*args: str) -> dict[str, Any]:
    r = CliRunner().invoke(app, [*args, "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    root = tmp_path_factory.mktemp("mixed")
    mixed_session().write(root / "home" / ".openclaw" / "agents" / "main" / "sessions" / "mixed-1.jsonl")
    summary = _cli("import", "openclaw", str(root / "home"), "--out", str(root / "traces"))
    export = _cli("export", str(root / "traces"), "--out", str(root / "bundles"))
    return root, summary, export


def test_the_import_summary_reconciles_and_names_the_encrypted_line(imported):
    _, s, _ = imported
    assert s["read"] == 14 == s["accepted"] + s["quarantined"] and s["quarantined"] == 1 and s["reconciles"]
    assert s["passed"] and s["drift"] == {} and s["skipped"] == [] and s["files_new"] == 1
    (sample,) = s["quarantine_samples"]
    assert sample.endswith("mixed-1.jsonl:8: <line>: encrypted transcript line (OpenClaw transcript encryption): "
                           "decrypt the transcript to import it")
    counts = s["mapping_counts"]
    assert (counts["context_free_messages"], counts["injected_messages"], counts["leaf_controls"],
            counts["resets"]) == (1, 1, 1, 1)


def test_the_run_keeps_openclaws_facts_and_the_models_goal(imported):
    root, _, _ = imported
    session = json.loads((root / "traces" / RUN / "session.json").read_text())
    assert session["goal"]["text"] == "check the disk usage"  # not the display text, not /status
    assert session["model_stack"]["worker"]["model"] == "anthropic/claude-sonnet-4-5"  # not gateway-injected
    assert session["runtime_config"]["extra"]["leaf_entry_id"] == "e13"
    events = {e["event_id"]: e for e in map(json.loads, (root / "traces" / RUN / "events.jsonl").read_text().splitlines())}
    assert session["capture"]["events_written"] == len(events) == 18
    assert events[f"{RUN}:e1"]["payload"]["observation"]["display_content"] == text("SHOWN-USER")
    assert events[f"{RUN}:e2"]["llm"]["params"]["response_model"] == "claude-sonnet-4-5-20250929"
    assert events[f"{RUN}:e3.1"]["payload"] == {"observation": {"openclaw": {"id": "t-1", "seq": 3}},
                                                "source": "openclaw.tool_result"}
    reply = events[f"{RUN}:e4"]["llm"]
    assert reply["response"] == "Disk is 40% full." and reply["params"]["response_id"] == "msg_02"
    assert reply["params"]["display_content"] == text("SHOWN-REPLY")
    assert events[f"{RUN}:e6"]["payload"]["source"] == "openclaw.injected"
    assert events[f"{RUN}:e5"]["payload"]["source"] == "openclaw.context_free_message"


def test_the_views_hold_the_models_turns_and_nothing_it_never_saw(imported):
    _, _, export = imported
    assert export["passed"] and export["counts"]["read"] == export["counts"]["accepted"] == 1
    assert export["rows"]["worker_sft"] == {"train": 3}
    bundle = Path(export["path"])
    sft = [json.loads(x) for x in (bundle / "views" / "worker_sft" / "train.jsonl").read_text().splitlines()]
    by_target = {r["messages"][-1]["content"]: r for r in sft}
    assert set(by_target) == {"Disk is 40% full.", "MEMORY-WRONG", "Memory: 2 GB free."}
    disk = by_target["Disk is 40% full."]["messages"]
    assert [m["role"] for m in disk] == ["user", "assistant", "tool", "assistant"]
    assert disk[0]["content"] == "check the disk usage" and disk[2]["content"] == "/dev/sda1 40%"
    # the reset cut the context; the rewound answer is labelled, the kept one is not
    assert by_target["Memory: 2 GB free."]["messages"][:-1] == [{"role": "user", "content": "and the memory?"}]
    assert by_target["MEMORY-WRONG"]["meta"]["labels"]["abandoned_path"] is True
    assert "abandoned_path" not in by_target["Memory: 2 GB free."]["meta"]["labels"]
    assert all(r["meta"]["goal_family"].startswith("openclaw/chat/") for r in sft)
    everything = "".join(p.read_text() for p in bundle.rglob("*.jsonl") if p.name != "quarantine.jsonl")
    assert not [s for s in NEVER_IN_VIEWS if s in everything]


def test_importing_the_session_again_reads_nothing(imported):
    root, _, _ = imported
    again = _cli("import", "openclaw", str(root / "home"), "--out", str(root / "traces"))
    assert again["read"] == 0 and again["files_unchanged"] == 1 and again["events_written"] == 0


@pytest.mark.parametrize("control", [{"targetId": "missing"}, {"targetId": "e2", "appendParentId": "missing"},
                                     {"targetId": "later"}], ids=["missing target", "missing append parent",
                                                                  "target written later"])
def test_a_leaf_control_openclaw_ignores_moves_no_leaf(tmp_path, control):
    """OpenClaw ignores a leaf control whose target, or append parent, is no earlier entry: the
    visible path stays (openclaw/openclaw, test 'ignores an unaccepted leaf control' of its session
    transcript reader). Before: the leaf moved to the control (or, with a missing append parent, to
    its target), a branch was counted, and with a missing append parent the answers after the
    target were exported as an abandoned path."""
    b = SessionBuilder("leafy")
    b.user("first")
    b.say("one")
    b.user("second")
    last = b.say("two")
    b.entry("leaf", parent=last, **control)
    b.entry("custom", parent=last, rid="later", customType="note", data={})
    b.leaf = "later"
    b.user("third")
    b.say("three")
    home = tmp_path / "home" / ".openclaw" / "agents" / "main" / "sessions"
    b.write(home / "leafy.jsonl")

    summary = _cli("import", "openclaw", str(tmp_path / "home"), "--out", str(tmp_path / "traces"))
    export = _cli("export", str(tmp_path / "traces"), "--out", str(tmp_path / "bundles"))

    assert summary["reconciles"] and summary["drift"] == {}
    assert summary["mapping_counts"]["leaf_controls_ignored"] == 1 and "branches" not in summary["mapping_counts"]
    extra = json.loads((tmp_path / "traces" / "oc-leafy" / "session.json").read_text())["runtime_config"]["extra"]
    assert "branches" not in extra
    sft = [json.loads(x) for p in sorted((Path(export["path"]) / "views" / "worker_sft").glob("*.jsonl"))
           for x in p.read_text().splitlines()]
    assert not any(r["meta"]["labels"].get("abandoned_path") for r in sft)
    three = next(r for r in sft if r["messages"][-1]["content"] == "three")
    assert [m["content"] for m in three["messages"]] == ["first", "one", "second", "two", "third", "three"]
