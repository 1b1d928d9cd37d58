"""``tracebridge feedback mapping set`` takes a reaction's emoji alone and writes a version only when
the table changes. Before, ``mapping set '' 1`` and ``mapping set '👍 ' 3`` (a blank from shell quoting)
were saved as new versions with scores no reaction ever matches, ``👍`` kept its old score, and
``mapping set 🤷 none`` for an emoji without a score wrote a version that changed nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app


def _set(mapping: Path, emoji: str, score: str) -> tuple[int, dict]:
    res = CliRunner().invoke(app, ["feedback", "mapping", "set", emoji, score, "--mapping", str(mapping), "--json"])
    return res.exit_code, json.loads(res.stdout)


@pytest.fixture
def mapping(tmp_path: Path) -> Path:
    path = tmp_path / "reaction-mapping.json"
    assert CliRunner().invoke(app, ["feedback", "mapping", "init", "--mapping", str(path)]).exit_code == 0
    return path


@pytest.mark.parametrize("emoji", ["", " ", "\ufe0f", "👍 ", " 👍"])
def test_an_emoji_that_no_reaction_matches_is_refused_and_nothing_written(mapping: Path, emoji: str) -> None:
    before = mapping.read_bytes()
    code, doc = _set(mapping, emoji, "3")
    assert code == 2 and "give the reaction's emoji alone" in doc["error"], doc
    assert mapping.read_bytes() == before


@pytest.mark.parametrize("emoji", ["thumbsup", ":+1:", "<3"])
def test_a_name_in_ascii_is_no_reaction(mapping: Path, emoji: str) -> None:
    """A harvest writes the emoji itself, ``custom:<id>`` or ``paid``: ``thumbsup`` was saved, matching nothing."""
    before = mapping.read_bytes()
    code, doc = _set(mapping, emoji, "1")
    assert code == 2 and "a name, not a reaction" in doc["error"], doc
    assert mapping.read_bytes() == before
    for ok in ("custom:5368324170671202286", "paid", "🆒"):
        code, doc = _set(mapping, ok, "1")
        assert code == 0 and doc["changed"] is True, doc


@pytest.mark.parametrize("emoji, score", [("🤷", "none"), ("👍", "1"), ("❤️", "2")])
def test_a_change_that_changes_nothing_writes_no_version(mapping: Path, emoji: str, score: str) -> None:
    before = mapping.read_bytes()
    code, doc = _set(mapping, emoji, score)
    assert code == 0 and doc["changed"] is False and doc["version"] == 1, doc
    assert mapping.read_bytes() == before


def test_a_real_change_is_a_new_version_with_the_old_table_in_history(mapping: Path) -> None:
    code, doc = _set(mapping, "👍", "3")
    assert code == 0 and doc["changed"] is True and doc["version"] == 2 and doc["scores"]["👍"] == 3.0, doc
    saved = json.loads(mapping.read_text())
    assert saved["history"][-1]["version"] == 1 and saved["history"][-1]["mapping"]["👍"] == 1


@pytest.mark.parametrize("score", ["1e400", "-1e400", "inf", "nan"])
def test_a_score_that_is_no_finite_number_names_the_emoji_and_the_text_given(mapping: Path, score: str) -> None:
    # 1e400 was refused as "score=inf": neither the emoji nor what was typed
    before = mapping.read_bytes()
    code, doc = _set(mapping, "👍", score)
    assert code == 2 and doc["error"].startswith(f"👍: score {score} is not a finite number"), doc
    assert mapping.read_bytes() == before
