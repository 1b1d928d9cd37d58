"""Lineage: event ids in order, per-thread and per-task default parents, one root, dropped events bridged."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tracebridge.capture.lineage import _PREVIOUS, Lineage, LineageError


def _write(lin: Lineage, parent=None, auto=True) -> str:
    event_id, default = lin.issue()
    lin.written(event_id, lin.parent(parent, default, auto))
    return event_id


def test_ids_are_sequential_and_the_first_event_is_the_root():
    lin = Lineage("r")
    a, b = _write(lin), _write(lin)
    assert (a, b) == ("r:000001", "r:000002") and lin.root == a


def test_children_of_a_dropped_event_attach_to_its_parent():
    lin = Lineage("r")
    root = _write(lin)
    bad, default = lin.issue()
    lin.dropped(bad, lin.parent(root, default, auto=False))
    _, default = lin.issue()
    assert default == root  # the dropped event was never any thread's previous event
    assert lin.parent(bad, default, auto=False) == root  # named explicitly: bridged to its parent


def test_a_second_root_and_a_later_or_foreign_parent_are_refused():
    lin = Lineage("r")
    _write(lin)
    _, default = lin.issue()
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
        lin.written(first[0], lin.parent(None, first[1], True))
        second = lin.issue()
        seen[name] = (first[0], second[1])

    for name in ("a", "b"):  # one after the other: the ids are then known
        t = threading.Thread(target=worker, args=(name,))
        t.start()
        t.join()
    assert seen["a"][1] == seen["a"][0] and seen["b"][1] == seen["b"][0]
    event_id, default = lin.issue()
    assert event_id == "r:000006" and default == root and lin.root == root  # the main thread's own


def test_children_of_a_dropped_root_attach_to_the_first_of_them_written():
    lin = Lineage("r")
    root, default = lin.issue()
    lin.dropped(root, lin.parent(None, default, auto=False))
    first = _write(lin, parent=root, auto=False)
    assert lin.root == first  # the first child written stands in for the dropped root
    for _ in range(2):  # its siblings are not second roots: they attach to it
        _, default = lin.issue()
        assert lin.parent(root, default, auto=False) == first
    with pytest.raises(LineageError, match="one root"):  # an explicit second root is still refused
        lin.parent(None, default, auto=False)


def test_each_asyncio_task_defaults_to_its_own_previous_event():
    """Tasks of one thread used to share the thread's previous event: a task's call hung under the
    other task's action. A task starts from its creator's previous event, then follows its own."""
    lin = Lineage("r")
    root = _write(lin)
    chains: dict[str, list[tuple[str, str | None]]] = {"a": [], "b": []}

    async def task(name: str) -> None:
        for _ in range(3):
            event_id, default = lin.issue()
            lin.written(event_id, default)
            chains[name].append((event_id, default))
            await asyncio.sleep(0)  # the other task writes in between

    async def main() -> None:
        await asyncio.gather(task("a"), task("b"))

    asyncio.run(main())
    for chain in chains.values():
        assert [parent for _, parent in chain] == [root] + [event_id for event_id, _ in chain[:-1]]


def test_a_new_thread_never_inherits_a_dead_threads_previous_event():
    """glibc gives a new thread the id of one that ended: keyed by thread id, the new thread's first
    event hung under the dead thread's last one instead of the run's previous event."""
    lin = Lineage("r")
    _write(lin)
    out: list[tuple[int, str | None]] = []

    def emit() -> None:
        event_id, default = lin.issue()
        out.append((threading.get_ident(), default))
        lin.written(event_id, default)

    for _ in range(5):
        before = _write(lin)  # the main thread writes between the threads: the run's previous event
        t = threading.Thread(target=emit)
        t.start()
        t.join()
        assert out[-1][1] == before
    assert len({ident for ident, _ in out}) < len(out)  # an id was reused (or the check above proves little)


def test_closed_lineages_leave_the_contexts_previous_events():
    done = Lineage("done")
    _write(done)
    done.close()
    assert done._key in _PREVIOUS.get()
    live = Lineage("live")
    _write(live)
    assert live._key in _PREVIOUS.get() and done._key not in _PREVIOUS.get()
