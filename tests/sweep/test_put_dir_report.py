"""``put_dir``, the report push of the sweep jobs: a copy into a local storage that fails keeps the report
there whole (before, it was deleted first and half the new one was left in its place, so ``pull`` found
neither), and on an object store the report's ``manifest.json`` goes last (before, first: a push cut short
left a manifest naming files that were not there)."""

from __future__ import annotations

from pathlib import Path

import fsspec
import pytest

from tests.report.test_report import trials
from tracebridge.cluster.submit import pull_report
from tracebridge.report import verify_report, write_report
from tracebridge.sweep.storage import put_dir


def _report(root: Path, uplift: int) -> Path:
    write_report(
        trials(root / "t", uplift=uplift),
        root / "r",
        config={"roles": ["verifier"]},
        wall_s=1.0,
        n_boot=20,
    )
    return root / "r"


def test_a_failed_local_report_push_keeps_the_report_there(tmp_path: Path) -> None:
    store = tmp_path / "store" / "reports" / "sw-1"
    put_dir(_report(tmp_path / "a1", 10), str(store))
    assert verify_report(store) == []
    first = {p.name: p.read_bytes() for p in store.iterdir()}
    second = _report(tmp_path / "a2", 30)
    (second / "zz-lost.txt").symlink_to(
        tmp_path / "nowhere"
    )  # a file that cannot be read: the copy fails
    with pytest.raises(OSError):
        put_dir(second, str(store))
    assert {
        p.name: p.read_bytes() for p in store.iterdir()
    } == first  # the report there, whole and unchanged
    assert sorted(p.name for p in store.parent.iterdir()) == [
        "sw-1"
    ]  # no copy in the making left beside it
    assert pull_report(str(store), tmp_path / "pulled")["problems"] == []
    (second / "zz-lost.txt").unlink()
    put_dir(second, str(store))  # and one that succeeds replaces it
    assert (
        verify_report(store) == []
        and (store / "results.json").read_bytes() == (second / "results.json").read_bytes()
    )


def test_the_manifest_of_a_report_pushed_to_an_object_store_goes_last(tmp_path: Path) -> None:
    report = _report(tmp_path, 10)
    (report / "a-extra").mkdir()  # a subfolder: sorted before and after manifest.json alike
    (report / "a-extra" / "notes.txt").write_text("x")
    uri = "memory://tb-put-dir-order/reports/sw-1"
    put_dir(report, uri)
    fs, path = fsspec.core.url_to_fs(uri)
    created = {
        k.removeprefix(f"{path.rstrip('/')}/"): v["created"] for k, v in fs.find(path, detail=True).items()
    }
    assert set(created) == {"manifest.json", "results.json", "report.html", "a-extra/notes.txt"}
    assert max(created, key=lambda k: created[k]) == "manifest.json", created
