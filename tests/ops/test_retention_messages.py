"""A pin config (``shadow.retention.pin_configs``) that cannot be read holds back every bundle and model,
and the prune's problem must say why: it used to keep only the first line of the config error,
``invalid config (1 problem(s)):``, leaving out the problem itself (a missing file, a bad value)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracebridge.ops.retention_sources import PinsUnreadable, config_pins


def test_a_missing_pin_config_says_it_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the shipped pin_configs are relative: run from another folder than the checkout
    with pytest.raises(PinsUnreadable) as exc:
        config_pins(["configs/ops/phase2.yaml"])
    assert "configs/ops/phase2.yaml: no such config file" in str(exc.value)


def test_an_invalid_pin_config_names_the_bad_key(tmp_path: Path) -> None:
    bad = tmp_path / "phase2.yaml"
    bad.write_text("shadow:\n  retention:\n    keep_cycles: 0\n")
    with pytest.raises(PinsUnreadable) as exc:
        config_pins([str(bad)])
    assert "shadow.retention.keep_cycles=0: must be >= 1" in str(exc.value)
    assert "\n" not in str(exc.value)  # one problem line in the report and the text output
