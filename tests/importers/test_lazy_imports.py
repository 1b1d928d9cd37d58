"""Collecting the importer tests must not import ``agentlightning``, ``litellm``, ``openai`` or
``agentops`` (seconds of CPU each, paid by every pytest-xdist worker): the modules that need them
take ``lazy_importorskip`` stand-ins, which import on first use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.importers.conftest import lazy_importorskip

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("agentlightning", "litellm", "openai", "agentops")
COLLECT = ("import sys, pytest; "
           "rc = pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', 'tests/importers']); "
           f"print('IMPORTED', [m for m in {HEAVY!r} if m in sys.modules]); sys.exit(rc)")


def test_collecting_the_importer_tests_imports_no_heavy_package() -> None:
    res = subprocess.run([sys.executable, "-c", COLLECT], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, check=False)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "IMPORTED []" in res.stdout, res.stdout[-3000:]


def test_a_missing_package_skips_and_a_present_one_imports_on_first_use() -> None:
    with pytest.raises(pytest.skip.Exception, match="tracebridge_no_such_package is not installed"):
        lazy_importorskip("tracebridge_no_such_package")
    json = lazy_importorskip("json")
    assert json.dumps([1]) == "[1]"
    with pytest.raises(AttributeError):
        json._default_encoder  # noqa: B018 - private names are what pytest probes: they must not import
