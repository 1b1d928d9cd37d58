"""The salt of the users' pseudonyms: a harvest with the salt's variable unset is refused (the built-in
salt is public: anyone could reverse the pseudonyms by hashing Telegram user ids), unless the config opts in
with ``allow_default_salt=true`` (tests, demos); a later harvest with the variable unset names it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson
import pytest

from tests.feedback.conftest import feedback_cli, reaction
from tracebridge.feedback.harvest import harvest_updates
from tracebridge.feedback.ledger import DEFAULT_SALT, read_ledger, salt_id

ENV = "TRACEBRIDGE_FEEDBACK_SALT"


def _dump(tmp_path: Path, *updates: dict) -> str:
    dump = tmp_path / "u.json"
    dump.write_bytes(orjson.dumps(list(updates)))
    return str(dump)


def test_no_salt_is_refused_before_anything_is_written(cfg, tmp_path, monkeypatch):
    """It exited 0 with no word and hashed the users under the public built-in salt."""
    from tracebridge.feedback.webhook import WebhookServer

    monkeypatch.delenv(ENV, raising=False)
    code, out = feedback_cli(cfg, "harvest", "--updates", _dump(tmp_path, reaction(1, 10, [], ["👍"])))
    assert code == 2 and f"{ENV} is not set" in out and "allow_default_salt=true" in out, out
    assert not Path(cfg.ledger).parent.exists()  # no ledger, lock, harvest log or quarantine
    with pytest.raises(ValueError, match=f"{ENV} is not set"):  # `feedback serve` refuses when it starts
        WebhookServer(dataclasses.replace(cfg, webhook_port=0), "a-long-secret")
    monkeypatch.setenv(ENV, "")  # empty is unset
    with pytest.raises(ValueError, match=f"{ENV} is not set"):
        harvest_updates(cfg, [("t:1", reaction(1, 10, [], ["👍"]))], "getUpdates", ["t"])


def test_the_salt_variable_of_the_config_is_the_one_read(cfg, monkeypatch):
    """``user_salt_env`` names another variable: with it unset, the default variable's salt was used."""
    monkeypatch.setenv(ENV, "not-this-one")
    monkeypatch.delenv("HOST_SALT", raising=False)
    with pytest.raises(ValueError, match="HOST_SALT is not set"):
        harvest_updates(dataclasses.replace(cfg, user_salt_env="HOST_SALT"), [("t:1", reaction(1, 10, [], ["👍"]))],
                        "getUpdates", ["t"])


def test_the_built_in_salt_is_taken_only_when_opted_in(cfg, tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    code, doc = feedback_cli(cfg, "harvest", "--updates", _dump(tmp_path, reaction(1, 10, [], ["👍"])),
                             "allow_default_salt=true")
    assert code == 0 and doc["added"] == 1
    assert [r.raw["salt_id"] for r in read_ledger(cfg.ledger).rows] == [salt_id(DEFAULT_SALT)]


def test_a_later_harvest_without_the_salt_names_the_variable(cfg, tmp_path, monkeypatch):
    """It said only "pseudonymised under another salt", not that the variable was unset."""
    monkeypatch.setenv(ENV, "the-host-salt")
    harvest_updates(cfg, [("t:1", reaction(1, 10, [], ["❤"]))], "getUpdates", ["t"])
    before = Path(cfg.ledger).read_bytes()
    monkeypatch.delenv(ENV)
    dump = _dump(tmp_path, reaction(2, 10, ["❤"], ["👎"]))
    code, out = feedback_cli(cfg, "harvest", "--updates", dump)
    assert code == 2 and f"{ENV} is not set" in out and "holds rows already" in out, out
    code, out = feedback_cli(cfg, "harvest", "--updates", dump, "allow_default_salt=true")
    assert code == 2 and "pseudonymised under another salt" in out and f"{ENV} is not set" in out, out
    assert Path(cfg.ledger).read_bytes() == before
