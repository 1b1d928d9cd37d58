"""Lineage: event ids in order, per-thread default parents, one root, dropped events bridged."""

from __future__ import annotations

import threading

import pytest

from tracebridge.capture.lineage import Lineage, LineageError


def _write(lin: Lineage, parent=None, auto=True) -> str:
    event_id, thread, default = lin.issue()
    lin.written(event_id, thread, lin.parent(parent, default, auto))
    return event_id


def test_ids_are_sequential_and_the_first_event_is_the_root():
    lin = Lineage("r")
    a, b = _write(lin), _write(lin)
    assert (a, b) == ("r:000001", "r:000002") and lin.root == a


def test_children_of_a_dropped_event_attach_to_its_parent():
    lin = Lineage("r")
    root = _write(lin)
    bad, _, default = lin.issue()
    lin.dropped(bad, lin.parent(root, default, auto=False))
    _, _, default = lin.issue()
    assert default == root  # the dropped event was never any thread's previous event
    assert lin.parent(bad, default, auto=False) == root  # named explicitly: bridged to its parent


def test_a_second_root_and_a_later_or_foreign_parent_are_refused():
    lin = Lineage("r")
    _write(lin)
    _, _, default = lin.issue()
    with pytest.raises(LineageError, match="one root"):
        lin.parent(None, default, auto=False)
    for parent in ("r:000009", "other:000001", "r:1", 7):
        with pytest.raises(LineageError, match="not an earlier event"):
            lin.parent(parent, default, auto=False)


def test_each_thread_defaults_to_its_own_previous_event():
    lin = Lineage("r")
    root = _write(lin)
    seen: dict[str, tuple[str, str | None]] = {}

    def worker(name: str) -> None:
        first = lin.issue()
        lin.written(first[0], first[1], lin.parent(None, first[2], True))
        second = lin.issue()
        seen[name] = (first[0], second[2])

    for name in ("a", "b"):  # one after the other: the ids are then known
        t = threading.Thread(target=worker, args=(name,))
        t.start()
        t.join()
    assert seen["a"][1] == seen["a"][0] and seen["b"][1] == seen["b"][0]
    event_id, _, default = lin.issue()
    assert event_id == "r:000006" and default == root and lin.root == root  # the main thread's own


def test_children_of_a_dropped_root_attach_to_the_first_of_them_written():
    lin = Lineage("r")
    root, _, default = lin.issue()
    lin.dropped(root, lin.parent(None, default, auto=False))
    first = _write(lin, parent=root, auto=False)
    assert lin.root == first  # the first child written stands in for the dropped root
    for _ in range(2):  # its siblings are not second roots: they attach to it
        _, _, default = lin.issue()
        assert lin.parent(root, default, auto=False) == first
    with pytest.raises(LineageError, match="one root"):  # an explicit second root is still refused
        lin.parent(None, default, auto=False)
