"""Goal families: each checker on known good and bad outcomes, and every tool's error paths."""

from __future__ import annotations

import random

import pytest

from tracebridge.schema.events import ErrorKind
from tracebridge.sim.families import FAMILIES, get_family
from tracebridge.sim.families.base import answers_match, read_answer, resolve_refs
from tracebridge.sim.families.calc import convert, evaluate
from tracebridge.sim.tools import Sandbox, Toolbox, ToolFailure

SEEDS = range(12)


def _setup(name, seed, tmp_path, unsat=False):
    tmp_path.mkdir(parents=True, exist_ok=True)
    fam, sb = get_family(name), Sandbox(tmp_path)
    task = fam.generate(random.Random(seed), sb, unsatisfiable=unsat)
    return fam, sb, task, Toolbox(sb, fam.tools())


def _run_reference(task, box):
    """Run the reference plan the way a perfect worker does; return the first failed outcome."""
    prev = None
    for st in task.steps:
        args = resolve_refs(st.plan_args, prev)
        out = box.call(st.tool, args)
        if not out.ok:
            return out
        assert st.output is None or out.output == st.output
        prev = out.output
    return None


@pytest.mark.parametrize("name", list(FAMILIES))
def test_reference_plan_satisfies_checker(name, tmp_path):
    for seed in SEEDS:
        fam, sb, task, box = _setup(name, seed, tmp_path / str(seed))
        assert not fam.check(task, sb), "nothing done yet must not pass"
        assert resolve_refs(task.steps[0].plan_args, None) == task.steps[0].args  # no refs in step 1
        assert _run_reference(task, box) is None, task.goal
        assert fam.check(task, sb), task.goal


@pytest.mark.parametrize("name", list(FAMILIES))
def test_unsatisfiable_goal_blocks_and_never_passes(name, tmp_path):
    for seed in SEEDS:
        fam, sb, task, box = _setup(name, seed, tmp_path / str(seed), unsat=True)
        failed = _run_reference(task, box)
        assert task.unsatisfiable and failed is not None and failed.error.kind in task.blocking, task.goal
        assert not fam.check(task, sb)


@pytest.mark.parametrize("name", ["sql", "calc", "docs"])
def test_wrong_answer_fails_checker(name, tmp_path):
    fam, sb, task, box = _setup(name, 3, tmp_path)
    assert _run_reference(task, box) is None and fam.check(task, sb)
    assert box.call("submit_answer", {"answer": "certainly wrong"}).ok
    assert not fam.check(task, sb) and read_answer(sb) == "certainly wrong"


def test_files_checker_bad_outcomes(tmp_path):
    for seed in SEEDS:
        fam, sb, task, box = _setup("files", seed, tmp_path / str(seed))
        if "dst" in task.facts:  # folder made, file not moved
            box.call("make_dir", {"path": task.steps[0].args["path"]})
        else:
            box.call("write_file", {"path": task.facts["out"], "content": "wrong"})
        assert not fam.check(task, sb), task.goal


@pytest.mark.parametrize("name", list(FAMILIES))
def test_misleading_observation_leads_to_a_failing_call(name, tmp_path):
    seen = 0
    for seed in SEEDS:
        fam, sb, task, box = _setup(name, seed, tmp_path / str(seed))
        m = fam.mislead(random.Random(seed), sb, task)
        if m is None:
            continue
        seen += 1
        assert m.observation != fam.observe(sb, task)
        out = box.call(task.steps[m.step].tool, m.plan_args)
        assert not out.ok and out.error.kind in (ErrorKind.NOT_FOUND, ErrorKind.BAD_ARGS), out
    assert seen


def test_generation_is_seeded(tmp_path):
    for name in FAMILIES:
        a = _setup(name, 5, tmp_path / f"{name}a")[2]
        b = _setup(name, 5, tmp_path / f"{name}b")[2]
        assert (a.goal, a.steps, a.expected) == (b.goal, b.steps, b.expected)


# --------------------------------------------------------------------------- tool error paths


def _err(box, tool, args):
    out = box.call(tool, args)
    assert not out.ok, (tool, args, out.output)
    return out.error.kind


def test_files_tool_errors(tmp_path):
    *_, box = _setup("files", 0, tmp_path)
    note = min(p.name for p in (tmp_path / "inbox").iterdir())
    cases = [("list_dir", {"path": "nope"}, ErrorKind.NOT_FOUND),
             ("list_dir", {"path": f"inbox/{note}"}, ErrorKind.BAD_ARGS),
             ("read_file", {"path": "inbox/missing.txt"}, ErrorKind.NOT_FOUND),
             ("read_file", {"path": "../etc/passwd"}, ErrorKind.PERMISSION),
             ("write_file", {"path": "nodir/x.txt", "content": "a"}, ErrorKind.NOT_FOUND),
             ("write_file", {"path": "locked/x.txt", "content": "a"}, ErrorKind.PERMISSION),
             ("make_dir", {"path": f"inbox/{note}"}, ErrorKind.BAD_ARGS),
             ("make_dir", {"path": "a/b/c"}, ErrorKind.NOT_FOUND),
             ("make_dir", {"path": "locked/new"}, ErrorKind.PERMISSION),
             ("move_file", {"src": "inbox/missing.txt", "dst": "docs"}, ErrorKind.NOT_FOUND),
             ("move_file", {"src": f"inbox/{note}", "dst": "nodir/x.txt"}, ErrorKind.NOT_FOUND),
             ("move_file", {"src": "locked/readme.txt", "dst": "docs"}, ErrorKind.PERMISSION),
             ("grep", {"pattern": "zzzz-never", "path": "docs"}, ErrorKind.NOT_FOUND),
             ("grep", {"pattern": "a", "path": "nope"}, ErrorKind.NOT_FOUND),
             ("count_lines", {"path": "inbox/missing.txt"}, ErrorKind.NOT_FOUND),
             ("count_lines", {}, ErrorKind.BAD_ARGS)]
    for tool, args, kind in cases:
        assert _err(box, tool, args) == kind, (tool, args)
    box.call("make_dir", {"path": "done"})
    assert box.call("move_file", {"src": f"inbox/{note}", "dst": "done"}).ok
    (tmp_path / "inbox" / note).write_text("again\n")
    assert _err(box, "move_file", {"src": f"inbox/{note}", "dst": "done"}) == ErrorKind.BAD_ARGS  # exists


def test_sql_tool_errors(tmp_path):
    *_, box = _setup("sql", 0, tmp_path)
    cases = [("describe_table", {"table": "refunds"}, ErrorKind.NOT_FOUND),
             ("sql_query", {"query": "SELEKT 1"}, ErrorKind.BAD_ARGS),
             ("sql_query", {"query": "SELECT * FROM refunds"}, ErrorKind.RUNTIME_ERROR),
             ("sql_query", {"query": "SELECT nope FROM orders"}, ErrorKind.RUNTIME_ERROR),
             ("sql_query", {"query": "DELETE FROM orders"}, ErrorKind.PERMISSION),
             ("sql_query", {"query": "DROP TABLE orders"}, ErrorKind.PERMISSION),
             ("sql_query", {"query": "ATTACH DATABASE 'x.db' AS x"}, ErrorKind.PERMISSION),
             ("sql_query", {"query": "PRAGMA table_info(orders)"}, ErrorKind.PERMISSION),
             ("sql_query", {"query": "SELECT 1; SELECT 2"}, ErrorKind.BAD_ARGS),
             ("sql_query", {"query": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                                     "SELECT COUNT(*) FROM c"}, ErrorKind.TIMEOUT),
             ("submit_answer", {"answer": ["a"]}, ErrorKind.BAD_ARGS)]
    for tool, args, kind in cases:
        assert _err(box, tool, args) == kind, (tool, args)
    assert box.call("sql_query", {"query": "SELECT COUNT(*) FROM orders"}).output["rows"] == [[40]]
    big = box.call("sql_query", {"query": "SELECT * FROM orders"}).output
    assert len(big["rows"]) == 40 and not big["truncated"]
    assert not (tmp_path / "x.db").exists()


def test_calc_tool_errors_and_values(tmp_path):
    *_, box = _setup("calc", 0, tmp_path)
    cases = [("calculate", {"expression": "2 +"}, ErrorKind.BAD_ARGS),
             ("calculate", {"expression": "__import__('os').system('true')"}, ErrorKind.BAD_ARGS),
             ("calculate", {"expression": "x * 2"}, ErrorKind.BAD_ARGS),
             ("calculate", {"expression": "(1).real"}, ErrorKind.BAD_ARGS),
             ("calculate", {"expression": "9 ** 99999"}, ErrorKind.BAD_ARGS),
             ("calculate", {"expression": "1 / (3 - 3)"}, ErrorKind.RUNTIME_ERROR),
             ("calculate", {"expression": "sqrt(-1)"}, ErrorKind.RUNTIME_ERROR),
             ("calculate", {"expression": "1" * 300}, ErrorKind.BAD_ARGS),
             ("convert", {"value": 1, "from_unit": "furlong", "to_unit": "m"}, ErrorKind.NOT_FOUND),
             ("convert", {"value": 1, "from_unit": "kg", "to_unit": "m"}, ErrorKind.RUNTIME_ERROR),
             ("convert", {"value": "1", "from_unit": "kg", "to_unit": "g"}, ErrorKind.BAD_ARGS)]
    for tool, args, kind in cases:
        assert _err(box, tool, args) == kind, (tool, args)
    assert evaluate("round(2 ** 10 / 3, 2) + abs(-1) + max(1, 2)") == pytest.approx(341.33 + 1 + 2)
    assert convert(100, "C", "F") == pytest.approx(212) and convert(32, "F", "K") == pytest.approx(273.15)
    assert convert(1, "mi", "km") == pytest.approx(1.609344)
    with pytest.raises(ToolFailure):
        evaluate("[1, 2]")


def test_docs_tool_errors(tmp_path):
    *_, box = _setup("docs", 0, tmp_path)
    cases = [("search", {"query": "no-such-thing-anywhere"}, ErrorKind.NOT_FOUND),
             ("search", {"query": "a", "kind": "planet"}, ErrorKind.BAD_ARGS),
             ("lookup", {"name": "Nobody Inc"}, ErrorKind.NOT_FOUND),
             ("lookup", {"name": "   "}, ErrorKind.BAD_ARGS),
             ("lookup", {"name": "../../etc/passwd"}, ErrorKind.NOT_FOUND)]
    for tool, args, kind in cases:
        assert _err(box, tool, args) == kind, (tool, args)
    hit = box.call("search", {"query": "labs"}).output["results"] or box.call("search", {"query": "o"}).output["results"]
    assert all({"id", "title", "kind"} <= set(h) for h in hit)


def test_answers_match():
    assert answers_match("5.67", 5.67) and answers_match(5.670000001, 5.67) and answers_match(" Porto ", "porto")
    assert not answers_match("5.7", 5.67) and not answers_match(None, 1) and not answers_match(True, 1)


def test_resolve_refs():
    prev = {"rows": [[12.5]], "facts": {"founder": "Mira Kotan"}, "value": 2.0}
    assert resolve_refs({"a": "$prev.rows.0.0", "b": "round($prev.value, 1)", "c": ["$prev.facts.founder"]}, prev) \
        == {"a": 12.5, "b": "round(2.0, 1)", "c": ["Mira Kotan"]}
    assert resolve_refs({"a": "$prev.nope"}, prev) == {"a": "$prev.nope"}  # stays unresolved
    assert resolve_refs("$prev", prev) is prev and resolve_refs("$prev.value", None) == "$prev.value"
