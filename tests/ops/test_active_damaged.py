"""An ``active.json`` that is a folder, empty, truncated or names no policy is an error naming the file: the
canary router falls back to the baseline loudly, ``ops canary-status`` and ``ops policy`` exit 1, and promote
and rollback refuse (writing nothing) unless the history holds the record to rewrite it from."""

from __future__ import annotations

import json

import pytest

from tests.ops.test_canary_rollout import _router, _served
from tests.ops.test_cli import run
from tests.ops.test_promotion import gate_report
from tracebridge.ops.promotion import (
    PolicyState,
    PromotionError,
    active_record,
    promote,
    read_history,
    rollback,
)
from tracebridge.ops.retention_sources import policy_pins

DAMAGE = {"folder": None, "empty": "", "truncated": '{"seq": 1, "active_pol', "no policy": "{}"}


def _damage(st: PolicyState, how: str) -> None:
    st.active_path.unlink(missing_ok=True)
    if DAMAGE[how] is None:
        (st.active_path / "x").mkdir(parents=True)  # e.g. a mount point, or a copy gone wrong
    else:
        st.active_path.write_text(DAMAGE[how])


@pytest.mark.parametrize("how", list(DAMAGE))
def test_a_damaged_active_json_is_an_error_naming_it_and_the_canary_fails_open_loudly(tmp_path, how, caplog):
    # before: a folder read as "no policy": the router opened the canary slice without a word, `ops policy`
    # said ok, and promote appended a record, then died on a traceback replacing the folder; an empty or
    # truncated file with no history was overwritten, the policy it named lost
    st = PolicyState(tmp_path / "policy")
    st.root.mkdir()
    _damage(st, how)
    with pytest.raises(PromotionError, match=str(st.active_path)):
        active_record(st)
    with caplog.at_level("WARNING", logger="tracebridge.ops.rollout"), _router(st) as r:
        assert _served(r) == {"baseline"}
    assert any(str(st.active_path) in rec.getMessage() for rec in caplog.records)
    cfg = tmp_path / "canary.yaml"
    cfg.write_text("canary: {salt: r, baseline_policy: v1, candidate_policy: v2}\n")
    res = run("ops", "canary-status", "--config", cfg, "--state", st.root, "--json")
    doc = json.loads(res.stdout)
    assert res.exit_code == 1 and doc["rollout"]["arm"] == "baseline" and str(st.active_path) in doc["rollout"]["error"]
    res = run("ops", "policy", "--state", st.root, "--json")
    doc = json.loads(res.stdout)
    assert res.exit_code == 1 and not doc["ok"] and str(st.active_path) in doc["problems"][0]
    assert "promote and rollback refuse until it is fixed" in doc["problems"][0]
    res = run("promote", "--report", gate_report(tmp_path / "g.json", "v2", "v1"), "--state", st.root, "--json")
    doc = json.loads(res.stdout)
    assert res.exit_code == 1 and doc["promoted"] is False and str(st.active_path) in doc["error"]
    assert read_history(st) == [] and not st.history_path.exists()  # nothing written, the file left as it was
    assert st.active_path.is_dir() if DAMAGE[how] is None else st.active_path.read_text() == DAMAGE[how]
    with pytest.raises(PromotionError, match=str(st.active_path)):
        policy_pins(st.root)  # retention removes no model while the active policy is unknown


def test_a_folder_at_active_json_stops_changes_even_with_a_history(tmp_path):
    st = PolicyState(tmp_path / "policy")
    promote(st, gate_report(tmp_path / "g1.json", "v2", "v1"))
    _damage(st, "folder")
    for change in (lambda: promote(st, gate_report(tmp_path / "g2.json", "v3", "v2")), lambda: rollback(st)):
        with pytest.raises(PromotionError, match="a folder, not the active-policy record"):
            change()
    assert len(read_history(st)) == 1  # before: a second record appended, never activated
    st.active_path.joinpath("x").rmdir()
    st.active_path.rmdir()
    assert promote(st, gate_report(tmp_path / "g3.json", "v3", "v2"))["seq"] == 2  # moved away: changes work again


def test_a_truncated_active_json_with_a_history_is_rewritten_from_it(tmp_path):
    st = PolicyState(tmp_path / "policy")
    promote(st, gate_report(tmp_path / "g1.json", "v2", "v1"))
    _damage(st, "truncated")
    res = run("ops", "policy", "--state", st.root, "--json")
    assert res.exit_code == 1 and "repaired from the history by the next change" in json.loads(res.stdout)["problems"][0]
    assert rollback(st)["active_policy"] == "v1" and active_record(st) == read_history(st)[-1]


def test_ops_policy_says_when_there_is_no_state_folder(tmp_path):
    # before: "active: none; 0 records" for a mistyped --state, the same as a state before the first promotion
    res = run("ops", "policy", "--state", tmp_path / "polcy")
    assert res.exit_code == 0 and f"note: {tmp_path / 'polcy'}: no policy state there (no promotion yet" in res.stdout
    doc = json.loads(run("ops", "policy", "--state", tmp_path / "polcy", "--json").stdout)
    assert doc["ok"] and doc["state_dir"] == str(tmp_path / "polcy") and "mistyped" in doc["note"]
    st = PolicyState(tmp_path / "policy")
    promote(st, gate_report(tmp_path / "g1.json", "v2", "v1"))
    assert json.loads(run("ops", "policy", "--state", st.root, "--json").stdout)["note"] is None
