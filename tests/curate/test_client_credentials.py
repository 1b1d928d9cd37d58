"""Credentials given to command-line clients, in text and in argv lists: a MySQL client's ``-p`` joined
to the password, a client's own password flag and a blank (``mongosh -p``, ``docker login -p``,
``sshpass -p``, ``redis-cli -a``, ``keytool -storepass``…), ``pass:`` after OpenSSL's flags, Samba's
``user%password`` and lftp's ``user,password``; each only after its client, so ``mkdir -p`` and
``ssh -p 2222`` stay. Also the one-word and upper-case values after secret names these rules share."""

from __future__ import annotations

import orjson
import pytest

from tracebridge.curate.config import RedactionConfig
from tracebridge.curate.detectors import Detectors
from tracebridge.curate.redact import Redactor, Scanner


@pytest.fixture(scope="module")
def det() -> Detectors:
    return Detectors(RedactionConfig())


def _event(payload: dict) -> dict:
    return {"run_id": "r", "event_id": "r:1", "event_type": "worker_tool_call", "step": 0, "role": "worker",
            "timestamp": "2026-01-31T12:00:00.000Z", "parent_event_id": None, "payload": payload}


@pytest.mark.parametrize("client", ["mysql", "mysqldump", "/usr/bin/mariadb", "docker exec db mysqladmin"])
def test_mysql_passwords_joined_to_p_are_found_and_trigger(det: Detectors, client: str) -> None:
    # the trigger looks for the client's name alone: no -u and no secret name need be there
    for pw, value in (("hunter22", "hunter22"), ("letmein", "letmein"), ("'correct horse'", "correct horse"),
                      ('"${X}y z"', "${X}y z")):
        text = f"{client} -h db -p{pw} app"
        spans = det.scan(text)
        assert [text[sp.start:sp.end] for sp in spans] == [value] and det.find(text) == spans, text
        assert det.triggered(text.encode()) and det.triggered(orjson.dumps({"cmd": text})), text



def test_variable_and_type_names_stay_a_word_holding_a_name_is_redacted() -> None:
    # through the export's redaction: a name is found in a value's parts, not inside one lower-case word
    red = Redactor(key=b"k")
    text = ("secret=topsecretvalue\npassword=hashed_pw\npassword=new_password\nsecret=secret_key\n"
            "class Settings(BaseModel):\n    password: SecretStr\n    token: SecretStr = Field(...)\n"
            "password: \"S3cr3t!\"\npassword: Hunter2x9\nmysql --password hunter22")
    assert red.redact_text(text, "r") == (
        "secret=<SECRET_1>\npassword=hashed_pw\npassword=new_password\nsecret=secret_key\n"
        "class Settings(BaseModel):\n    password: SecretStr\n    token: SecretStr = Field(...)\n"
        "password: \"<SECRET_2>\"\npassword: <SECRET_3>\nmysql --password <SECRET_4>")


def test_mysql_p_joined_in_argv_is_a_password_after_the_client_only() -> None:
    # a record's argv list: -p<password> after mysql/mariadb, whatever its shape, as in a command's text
    args = {"a": ["mysql", "-phunter22", "app"], "b": ["/usr/bin/mariadb", "-u", "root", "-pcorrecthorse"],
            "c": ["docker", "exec", "db", "mysqldump", "-pletmein", "app"],
            "prompt": ["mysql", "-u", "root", "-p", "app"], "var": ["mysql", "-p$MYSQL_PWD"],
            "short": ["mysql", "-pab"], "port": ["mysql", "-P3306", "--port=3306"],
            "before": ["docker", "run", "-p3306:3306", "mysql"], "mkdir": ["mkdir", "-pbuildout", "x"]}
    ev = _event({"call_id": "c1", "tool": "sh", "args": args})
    assert sum(Scanner().scan(ev).values()) == 3  # pass 2 sees them on an unredacted run
    out = Redactor(key=b"k").redact(ev)["payload"]["args"]
    assert [out[k] for k in "abc"] == [["mysql", "-p<SECRET_1>", "app"],
                                       ["/usr/bin/mariadb", "-u", "root", "-p<SECRET_2>"],
                                       ["docker", "exec", "db", "mysqldump", "-p<SECRET_3>", "app"]]
    assert {k: v for k, v in out.items() if k not in "abc"} == {k: v for k, v in args.items() if k not in "abc"}
    assert Scanner().scan(Redactor().redact(ev)) == {}


def test_client_password_flag_words_and_upper_case_words_are_redacted_references_stay() -> None:
    # through the export's redaction, on text and on a record's argv: the word after a database
    # client's --password, an upper-case word after "="; variables, constants and help text stay
    red = Redactor(key=b"k")
    text = ("mysql -u root --password correcthorse app\nPASSWORD=HUNTERHUNTER\nexport DB_PASSWORD=ZQXWVUTS\n"
            "PASSWORD=$SECRET\nmysql --password ${DB_PASS}\nset PASSWORD=%DB_PASS%\npassword=DB_PASSWORD\n"
            "secret=SECRET_KEY\npassword = MISSING\nuse the mysql --password option\nsecret: OPAQUE")
    assert red.redact_text(text, "r") == (
        "mysql -u root --password <SECRET_1> app\nPASSWORD=<SECRET_2>\nexport DB_PASSWORD=<SECRET_3>\n"
        "PASSWORD=$SECRET\nmysql --password ${DB_PASS}\nset PASSWORD=%DB_PASS%\npassword=DB_PASSWORD\n"
        "secret=SECRET_KEY\npassword = MISSING\nuse the mysql --password option\nsecret: OPAQUE")
    args = {"argv": ["mysql", "--password", "HUNTERHUNTER", "app"], "const": ["run", "--password", "DB_PASSWORD"],
            "env": ["deploy", "--secret", "%DB_SECRET%"]}
    ev = _event({"call_id": "c1", "tool": "sh", "args": args})
    out = Redactor(key=b"k").redact(ev)["payload"]["args"]
    assert out == {**args, "argv": ["mysql", "--password", "<SECRET_1>", "app"]}
    assert sum(Scanner().scan(ev).values()) == 1 and Scanner().scan(Redactor().redact(ev)) == {}


def test_client_password_flags_in_argv_are_passwords_after_their_client_only() -> None:
    # a record's argv list, as a command's text: the word after a client's own password flag
    args = {"a": ["sshpass", "-p", "hunter", "ssh", "host"], "b": ["docker", "login", "-u", "bob", "-p", "hunter22x"],
            "c": ["/usr/bin/redis-cli", "-h", "cache", "-a", "sunshine"], "d": ["helm", "registry", "login", "-p", "letmein"],
            "e": ["sshpass", "-v", "-p", "correcthorse", "ssh", "-p", "foldername"],
            "port": ["docker", "run", "-p", "8080:80"], "prompt": ["mysql", "-u", "root", "-p", "appdb"],
            "flag": ["mongosh", "-p", "--quiet"], "mkdir": ["mkdir", "-p", "buildout"], "redis": ["redis-cli", "-p", "6379"],
            "wrapped": ["sshpass", "-f", "pwfile", "ssh", "h", "mkdir", "-p", "foldername"],
            "run": ["docker", "run", "img", "login", "-p", "hostname"]}
    ev = _event({"call_id": "c1", "tool": "sh", "args": args})
    assert sum(Scanner().scan(ev).values()) == 5  # pass 2 sees them on an unredacted run
    out = Redactor(key=b"k").redact(ev)["payload"]["args"]
    assert [out[k] for k in "abcde"] == [
        ["sshpass", "-p", "<SECRET_1>", "ssh", "host"], ["docker", "login", "-u", "bob", "-p", "<SECRET_2>"],
        ["/usr/bin/redis-cli", "-h", "cache", "-a", "<SECRET_3>"], ["helm", "registry", "login", "-p", "<SECRET_4>"],
        ["sshpass", "-v", "-p", "<SECRET_5>", "ssh", "-p", "foldername"]]
    assert {k: v for k, v in out.items() if k not in "abcde"} == {k: v for k, v in args.items() if k not in "abcde"}
    assert Scanner().scan(Redactor().redact(ev)) == {}


def test_other_clients_passwords_in_argv_are_found_after_their_client_only() -> None:
    # a record's argv list: keytool's -storepass, openssl's pass:, Samba's user%password, lftp's
    # user,password and a quoted upper-case word under a key name; not another command's -U or -u
    args = {"a": ["keytool", "-list", "-storepass", "hunter22"], "b": ["openssl", "rsa", "-passin", "pass:correcthorse"],
            "c": ["/usr/bin/smbclient", "//h/s", "-U", "bob%sunshine"], "d": ["lftp", "-u", "bob,letmein22", "host"],
            "api_key": "QWERTYUIOPASDF", "psql": ["psql", "-U", "bob%x", "-u", "bob,hunter22", "-Ubob%hunter22"],
            "env": ["openssl", "rsa", "-passin", "env:PW"], "token": "nextchar", "id_token": "TILE_GLOBAL"}
    ev = _event({"call_id": "c1", "tool": "sh", "args": args})
    assert sum(Scanner().scan(ev).values()) == 5  # pass 2 sees them on an unredacted run
    out = Redactor(key=b"k").redact(ev)["payload"]["args"]
    assert [out[k] for k in ("a", "b", "c", "d", "api_key")] == [
        ["keytool", "-list", "-storepass", "<SECRET_1>"], ["openssl", "rsa", "-passin", "pass:<SECRET_2>"],
        ["/usr/bin/smbclient", "//h/s", "-U", "bob%<SECRET_3>"], ["lftp", "-u", "bob,<SECRET_4>", "host"], "<SECRET_5>"]
    assert {k: out[k] for k in ("psql", "env", "token", "id_token")} == {k: args[k] for k in ("psql", "env", "token", "id_token")}
    assert Scanner().scan(Redactor().redact(ev)) == {}


def test_samba_user_joined_to_u_and_random_letters_in_records_are_found() -> None:
    # a record's argv: Samba's -U joined to user%password, after a Samba client only; a dict key's
    # string of lower-case letters that read as no word, under a token or key name; words stay
    args = {"a": ["smbclient", "//h/s", "-Ubob%sunshine", "-c", "ls"], "b": ["rpcclient", "-UCORP\\bob%hunter22", "dc1"],
            "api_key": "zxqvbnmlkjhgfd", "cmd": "smbclient -L h -Ubob%letmein22",
            "mkfs": ["mkfs", "-Ubob%hunter22"], "token": "synchronization", "access_token": "access"}
    ev = _event({"call_id": "c1", "tool": "sh", "args": args})
    assert sum(Scanner().scan(ev).values()) == 4  # pass 2 sees them on an unredacted run
    out = Redactor(key=b"k").redact(ev)["payload"]["args"]
    assert out == {**args, "a": ["smbclient", "//h/s", "-Ubob%<SECRET_1>", "-c", "ls"],
                   "b": ["rpcclient", "-UCORP\\bob%<SECRET_2>", "dc1"], "api_key": "<SECRET_3>",
                   "cmd": "smbclient -L h -Ubob%<SECRET_4>"}
    assert Scanner().scan(Redactor().redact(ev)) == {}
