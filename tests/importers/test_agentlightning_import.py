"""``tracebridge import agentlightning``: spans stored by a real Agent Lightning store (its tracer and
in-memory store drive the smoke's tiny agent; ``query_spans``/``query_rollouts``/``query_attempts``
are dumped as JSONL) become one schema-v2 run per rollout through the runtime hook's mapping;
bad lines are quarantined; re-imports are byte-identical and incremental.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from tests.importers.conftest import lazy_importorskip, tree_bytes
from tracebridge.capture.reader import RunDir
from tracebridge.cli import app
from tracebridge.importers.agentlightning.config import SpanImportConfig
from tracebridge.importers.agentlightning.hook import RuntimeHook
from tracebridge.importers.agentlightning.importer import import_agentlightning
from tracebridge.importers.agentlightning.smoke import tiny_agent
from tracebridge.schema.validate import Thresholds, check_run, validate_root

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
agl = lazy_importorskip("agentlightning")


def _lines(models) -> bytes:
    return b"".join(m.model_dump_json().encode() + b"\n" for m in models)


async def _record(out: Path) -> dict:
    """Run rollouts through Agent Lightning's tracer and store and dump what the store holds.

    ``ok`` succeeds; ``retry`` fails its first attempt (reward 0) and succeeds in its second; ``bad``
    gets reward 0 and status failed; ``live`` is still running when the first dump is taken (its
    final record is kept for later); ``bare`` has spans but no Rollout record in the dump.
    """
    store = agl.InMemoryLightningStore()
    tracer = agl.OtelTracer()
    tracer.init()
    tracer.init_worker(0, store)

    async def attempt(rid: str, aid: str, task: dict, status: str | None) -> None:
        async with tracer.trace_context("test", rollout_id=rid, attempt_id=aid):
            tiny_agent(task)
        if status is not None:  # an attempt's end also ends its rollout in the store
            await store.update_attempt(rid, aid, status=status)

    ids: dict[str, str] = {}
    live_attempt = ""
    for name, task in [("ok", {"question": "6*7", "expected": 42}), ("retry", {"question": "2+2", "expected": 4}),
                       ("bad", {"question": "5-1", "expected": 3}), ("live", {"question": "7*3", "expected": 21}),
                       ("bare", {"question": "3*3", "expected": 9})]:
        r = await store.start_rollout(input=task)
        ids[name] = rid = r.rollout_id
        if name == "retry":
            await attempt(rid, r.attempt.attempt_id, {**task, "expected": 5}, "failed")
            r = await store.start_attempt(rid)
        status = {"bad": "failed", "live": None}.get(name, "succeeded")
        await attempt(rid, r.attempt.attempt_id, task, status)
        if status is not None:
            await store.update_rollout(rid, status=status)
        else:
            live_attempt = r.attempt.attempt_id
    out.mkdir(parents=True)
    (out / "rollouts.jsonl").write_bytes(_lines(r for r in await store.query_rollouts() if r.rollout_id != ids["bare"]))
    (out / "attempts.jsonl").write_bytes(_lines(await store.query_attempts(ids["retry"])))
    spans = {n: list(await store.query_spans(rid)) for n, rid in ids.items()}
    (out / "spans.jsonl").write_bytes(b"".join(_lines(v) for v in spans.values()))
    await store.update_attempt(ids["live"], live_attempt, status="succeeded")  # it ends after the dump
    later = _lines([(await store.query_rollouts(rollout_id_in=[ids["live"]]))[0]])
    tracer.teardown_worker(0)
    tracer.teardown()
    return {"ids": ids, "spans": {n: [s.model_dump(mode="json") for s in v] for n, v in spans.items()},
            "later": later}


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    d = tmp_path_factory.mktemp("al")
    return d / "store", asyncio.run(_record(d / "store"))


def _events(run_dir: Path) -> list[dict]:
    return [orjson.loads(x) for x in (run_dir / "events.jsonl").read_bytes().splitlines()]


def test_one_run_per_rollout_from_the_latest_attempt(stored, tmp_path):
    src, s = stored
    ids = s["ids"]
    rep = import_agentlightning([src], tmp_path / "t")
    d = rep.to_dict()
    assert d["reconciles"] and not d["imported_nothing"] and d["quarantined"] == 0
    n_spans = sum(map(len, s["spans"].values()))
    assert d["records"] == {"attempt": 2, "rollout": 4, "span": n_spans}
    assert (d["rollouts_seen"], d["rollouts_imported"], d["rollouts_pending"], d["rollouts_skipped"]) == (5, 4, 1, 0)
    assert d["spans_superseded"] == len(s["spans"]["retry"]) // 2 and d["events_dropped"] == 0
    runs = {p.name for p in (tmp_path / "t").iterdir() if not p.name.startswith(".")}
    assert runs == {f"al-{ids[n]}" for n in ("ok", "retry", "bad", "bare")}  # live is still running
    v = validate_root(tmp_path / "t", Thresholds())
    assert v.passed, v.problems
    session = {n: RunDir(tmp_path / "t" / f"al-{ids[n]}").read_session() for n in ("ok", "retry", "bad", "bare")}
    assert session["ok"]["source"] == {"kind": "agentlightning", "ref": ids["ok"]}
    assert session["ok"]["goal"]["text"] == "6*7" and session["ok"]["goal"]["family"] == "agentlightning"
    assert session["ok"]["summary"]["success"] is True and session["ok"]["labels"] == {"reward": 1.0}
    retry = session["retry"]["runtime_config"]["extra"]
    assert retry["attempts"] == 2 and retry["rollout_status"] == "succeeded"
    assert retry["attempt_id"] == s["spans"]["retry"][-1]["attempt_id"]  # the second attempt, reward 1
    assert session["retry"]["labels"] == {"reward": 1.0}
    end = _events(tmp_path / "t" / f"al-{ids['bad']}")[-1]["payload"]
    assert end == {"success": False, "outcome": "", "failure_class": "RolloutFailed"}
    assert session["bare"]["goal"]["text"] == "What is 3*3?"  # no Rollout record: the first user message


def test_import_maps_like_the_runtime_hook(tmp_path):
    """The hook's own spans, stored and imported, give the hook's run but for what spans do not hold."""
    res = RuntimeHook(tmp_path / "hook", keep_spans=True).run(tiny_agent, {"question": "6*7", "expected": 42})
    (tmp_path / "spans.jsonl").write_bytes(b"".join(orjson.dumps(sp) + b"\n" for sp in res.raw_spans))
    rep = import_agentlightning([tmp_path / "spans.jsonl"], tmp_path / "imp")
    assert rep.rollouts_imported == 1
    hooked, imported = _events(res.run_dir), _events(tmp_path / "imp" / res.run_id)
    assert [e["event_id"] for e in imported] == [e["event_id"] for e in hooked]
    for h, i in zip(hooked, imported):
        if h["event_type"] == "planner_input":  # the task: the hook has it, stored spans only the prompt
            assert i["payload"]["goal"] == "What is 6*7?" and h["payload"]["goal"] == "6*7"
        elif h["event_type"] in ("worker_output", "episode_end"):  # the agent's return value is not a span
            assert h["payload"].get("result", h["payload"].get("outcome")) == "The answer is 42."
            assert i["payload"].get("result", i["payload"].get("outcome")) in (None, "")
        else:
            assert i == h
    chk = check_run(RunDir(tmp_path / "imp" / res.run_id))
    assert chk.schema_valid and chk.lineage_valid


def test_reimport_is_byte_identical_and_incremental(stored, tmp_path):
    src, s = stored
    ids = s["ids"]
    work = tmp_path / "src"
    shutil.copytree(src, work)
    out = tmp_path / "t"
    import_agentlightning([work], out)
    first = tree_bytes(out)
    again = import_agentlightning([work], out).to_dict()
    assert (again["files_unchanged"], again["read"], again["events_written"]) == (3, 0, 0)
    assert not again["imported_nothing"] and tree_bytes(out) == first
    fresh = tmp_path / "fresh"
    import_agentlightning([work], fresh)
    assert tree_bytes(fresh) == first  # ids and times from the spans: the same bytes anywhere
    # the running rollout ends: its final record arrives, and it is imported from the waiting records
    with open(work / "rollouts.jsonl", "ab") as fh:
        fh.write(s["later"])
    d = import_agentlightning([work], out).to_dict()
    assert (d["files_appended"], d["files_unchanged"], d["read"], d["rollouts_imported"]) == (1, 2, 1, 1)
    assert (out / f"al-{ids['live']}" / "session.json").is_file() and d["rollouts_pending"] == 0
    assert {k: v for k, v in tree_bytes(out).items() if ids["live"] not in k} == first
    # the store dumped again (another order): the file is read again whole, every rollout found unchanged
    spans = work / "spans.jsonl"
    spans.write_bytes(b"".join(reversed(spans.read_bytes().splitlines(keepends=True))))
    d = import_agentlightning([work], out).to_dict()
    assert (d["files_rewritten"], d["rollouts_unchanged"], d["events_written"], d["skipped"]) == (1, 5, 0, [])
    assert not d["imported_nothing"]
    # a span of an imported rollout read later is reported, and the run is left as it was
    late = {**s["spans"]["ok"][0], "span_id": "00000000000000ff", "sequence_id": 99}
    n_lines = len(spans.read_bytes().splitlines())
    with open(work / "spans.jsonl", "ab") as fh:
        fh.write(orjson.dumps(late) + b"\n")
    before = tree_bytes(out)
    d = import_agentlightning([work], out).to_dict()
    assert d["rollouts_skipped"] == 1 and d["imported_nothing"] and tree_bytes(out) == before
    why = f"rollout {ids['ok']}: 1 record(s) that its import into run al-{ids['ok']} did not have"
    assert d["skipped"] == [f"{work / 'spans.jsonl'}:{n_lines + 1}: {why} (an imported run is never rewritten)"]
    # the state lost: everything is read again, nothing is written twice
    (out / ".import" / "agentlightning-state.json").unlink()
    d = import_agentlightning([work], out).to_dict()
    assert d["events_written"] == 0 and d["events_already_present"] > 0 and tree_bytes(out) == before


BAD_LINES = [
    b"{not json\n",
    b"[1, 2]\n",
    b'{"hello": "world"}\n',
    b"\n",
]


def test_bad_lines_are_quarantined_and_counts_reconcile(stored, tmp_path):
    good = stored[1]["spans"]["ok"]
    no_name = {k: v for k, v in good[1].items() if k != "name"}
    bad_time = {**good[2], "start_time": "yesterday"}
    f = tmp_path / "mixed.jsonl"
    f.write_bytes(b"".join(orjson.dumps(sp) + b"\n" for sp in good) + b"".join(BAD_LINES)
                  + orjson.dumps(no_name) + b"\n" + orjson.dumps(bad_time) + b"\n" + b'{"rollout_id": "ro-x", "span')
    n = len(good)
    rep = import_agentlightning([f], tmp_path / "t").to_dict()
    assert (rep["read"], rep["accepted"], rep["quarantined"], rep["lines_blank"], rep["lines_pending"]) == \
        (n + 5, n, 5, 1, 1)
    # the half-written last line may be a record of any rollout of the file: "ok" waits for it
    assert rep["reconciles"] and (rep["rollouts_imported"], rep["rollouts_pending"]) == (0, 1)
    assert rep["quarantine_samples"][0].startswith(f"{f}:{n + 1}: <line>: invalid JSON: unexpected character")
    assert rep["quarantine_samples"][1:] == [
        f"{f}:{n + 2}: <line>: not a JSON object (list)",
        (f"{f}:{n + 3}: <record>: not an Agent Lightning Span (span_id), Rollout (rollout_id, input) or "
         "Attempt (attempt_id, sequence_id) record"),
        f"{f}:{n + 5}: name: Field required",
        f"{f}:{n + 6}: start_time: Input should be a valid number, unable to parse string as a number",
    ]
    q = [orjson.loads(x) for x in (tmp_path / "t" / ".import" / "agentlightning-quarantine.jsonl").read_bytes().splitlines()]
    assert [(r["line"], r["field"]) for r in q] == [(n + 1, "<line>"), (n + 2, "<line>"), (n + 3, "<record>"),
                                                    (n + 5, "name"), (n + 6, "start_time")]
    # finished files: the half-written last line is quarantined too, once
    rep = import_agentlightning([f], tmp_path / "t", SpanImportConfig(final=True)).to_dict()
    assert (rep["read"], rep["quarantined"]) == (1, 1) and rep["reconciles"] and rep["rollouts_imported"] == 1
    assert rep["quarantine_samples"] == [f"{f}:{n + 7}: <line>: truncated line (no newline, not valid JSON)"]


def test_import_command(stored, tmp_path):
    src = stored[0]
    out = tmp_path / "t"
    r = CliRunner().invoke(app, ["import", "agentlightning", str(src), "--out", str(out), "--validate", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["passed"] and doc["validation"]["passed"] and doc["rollouts_imported"] == 4
    assert doc["state_file"] == str(out / ".import" / "agentlightning-state.json")
    r = CliRunner().invoke(app, ["import", "agentlightning", str(src), "--out", str(out)])
    assert r.exit_code == 0 and "rollouts seen" in r.output and "1 / 0 / 0 / 1 / 0" in r.output, r.output  # the running rollout waits
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"".join(BAD_LINES))
    r = CliRunner().invoke(app, ["import", "agentlightning", str(bad), "--out", str(tmp_path / "b"), "--json"])
    doc = json.loads(r.stdout)
    assert r.exit_code == 1 and doc["reconciles"] and doc["imported_nothing"] and doc["quarantined"] == 3
    assert "nothing could be imported" in doc["problems"][-1]
    r = CliRunner().invoke(app, ["import", "agentlightning", str(tmp_path / "missing"), "--out", str(out)])
    assert r.exit_code == 2 and "no such file or folder" in r.output
    r = CliRunner().invoke(app, ["import", "agentlightning", str(src), "--out", str(out), "goal_famly=x"])
    assert r.exit_code == 2 and "did you mean 'goal_family'" in r.output


def test_a_torn_last_line_in_an_imported_run_is_cut_when_it_is_read_again(stored, tmp_path):
    """An import stopped mid-write leaves a torn last line: the next import that reads the run again (here
    after its state was lost) cuts it, reports it and finds every whole event already there."""
    src, s = stored
    out = tmp_path / "t"
    import_agentlightning([src], out)
    before = tree_bytes(out)
    events = out / f"al-{s['ids']['ok']}" / "events.jsonl"
    with open(events, "ab") as fh:
        fh.write(b'{"run_id": "al-')
    (out / ".import" / "agentlightning-state.json").unlink()
    d = import_agentlightning([src], out).to_dict()
    assert d["torn_tails_cut"] == 1 and d["events_written"] == 0 and d["skipped"] == []
    assert any(str(events) in p and "torn last line (15 bytes" in p for p in d["problems"]), d["problems"]
    assert {k: v for k, v in tree_bytes(out).items() if ".import" not in k} == \
        {k: v for k, v in before.items() if ".import" not in k}
