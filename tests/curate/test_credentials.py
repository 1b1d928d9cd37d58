"""Credentials found by their context: a secret name before the value (``password=``, ``"api_key":``,
``--token``), ``curl -u user:password`` and base64 of ``user:password`` outside an auth header.

Each positive is found by ``scan`` (all detectors), by ``find`` (only the groups whose trigger fired)
and through the triggers on bytes and JSON; each negative (a count, a boolean, a mask, a template,
code, prose) is left alone, so the training text around a secret name survives.
"""

from __future__ import annotations

import base64
import random

import orjson
import pytest

from tracebridge.curate.config import RedactionConfig
from tracebridge.curate.detectors import Detectors
from tracebridge.curate.redact import Redactor, Scanner
from tracebridge.curate.triggers import keyword_hit

B64_USER_KEY = base64.b64encode(b"user:sk-proj-" + b"aB3dE6gH9" * 3).decode()
B64_USER_PW = base64.b64encode(b"bob:S3cr3tPa55\n").decode()  # `echo bob:S3cr3tPa55 | base64`

POSITIVES = [
    ("tool arg", "psql --host db password=hunter2x9 --db app", "hunter2x9"),
    ("JSON text", '{"api_key": "zq8LwT4nVb2Kx"}', "zq8LwT4nVb2Kx"),
    ("YAML", "db:\n  api_key: zq8LwT4nVb2Kx\n  pool: 5", "zq8LwT4nVb2Kx"),
    ("YAML upper", "PASSWORD: Hunter2x9!", "Hunter2x9!"),
    ("shell", "export SECRET=s3cr3tV4lue && run", "s3cr3tV4lue"),
    ("shell token", "deploy token=ab12cd34ef56 --force", "ab12cd34ef56"),
    (".env", "DB_HOST=db\nDB_PASSWORD=hunter2x9\nDEBUG=1", "hunter2x9"),
    ("INI", "[client]\npassword = 'hunter2x9'\n", "hunter2x9"),
    ("query string", "GET /v1/data?api_key=zq8LwT4nVb2Kx&limit=10", "zq8LwT4nVb2Kx"),
    ("header", "X-Api-Key: zq8LwT4nVb2Kx", "zq8LwT4nVb2Kx"),
    ("azure storage", ("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50u"
                       "SRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;EndpointSuffix=core.windows.net"),
     "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="),
    ("env dump", "HOME=/root\nSLACK_BOT_TOKEN=abc123def456ghi\n", "abc123def456ghi"),
    ("flag", "mysql --password hunter2x9 -h db", "hunter2x9"),
    ("python", 'connect(user="app", password="hunter2x9")', "hunter2x9"),
    ("curl -u", "curl -u bob:S3cr3tPa55 https://api.example.com/v1", "S3cr3tPa55"),
    ("curl --user", "curl --user 'bob:S3cr3tPa55' https://api.example.com", "S3cr3tPa55"),
    ("curl --user=", "curl --user=bob:S3cr3tPa55 https://api.example.com", "S3cr3tPa55"),
    ("b64 header", f'curl -H "X-Auth: {B64_USER_KEY}" https://x.io', B64_USER_KEY),
    ("b64 echo", f"echo {B64_USER_PW} | base64 -d", B64_USER_PW),
    ("b64 after newline", f"cat creds.txt\n{B64_USER_PW}", B64_USER_PW),  # in JSON the run starts at \n's n
    ("two classes", "password=hunter2hunter", "hunter2hunter"),
    # an Authorization header of another scheme than Bearer or Basic, or of none
    ("auth token scheme", "curl -H 'Authorization: Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b' https://x.io",
     "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"),
    ("auth apikey scheme", '{"authorization": "ApiKey Zx8Qp2Lm9Vb4Nc7Ws1Ed5Rf3"}', "Zx8Qp2Lm9Vb4Nc7Ws1Ed5Rf3"),
    ("auth no scheme", "Proxy-Authorization: 9f8e7d6c5b4a39281706f5e4d3c2b1a0", "9f8e7d6c5b4a39281706f5e4d3c2b1a0"),
    ("dotted token", "export DISCORD_TOKEN=MTIzNDU2Nzg5MDEyMzQ1Njc4.GabCdE.k3JdLw9xQmZpT2vNbR8sYcHfA1uEo4iG && run",
     "MTIzNDU2Nzg5MDEyMzQ1Njc4.GabCdE.k3JdLw9xQmZpT2vNbR8sYcHfA1uEo4iG"),
    # strong contexts: a password whatever its shape (one class; blanks inside quotes)
    ("curl -u word", "curl -u bob:password https://api.example.com", "password"),
    ("curl -u later", 'sudo /usr/bin/curl -s "https://x.io/a?b=1&c=2" -u admin:hunter', "hunter"),
    ("wget --user", "wget --user=bob:letmein https://x.io/f", "letmein"),
    ("proxy user", "pip download x --proxy-user bob:hunter", "hunter"),
    ("quoted word", 'password = "hunter"', "hunter"),
    ("passphrase", 'password: "correct horse battery staple"', "correct horse battery staple"),
    (".env quoted blanks", 'DB_HOST=db\nPASSWORD="my secret pass"\n', "my secret pass"),
    ("secret quoted", "client_secret: 'opensesame'", "opensesame"),
    ("quote inside", 'passphrase="don\'t tell bob"', "don't tell bob"),
    ("escaped JSON", '{\\"password\\": \\"hunter2x9\\"}', "hunter2x9"),  # JSON inside a string
    ("quote cut off", 'log tail: password: "hunter2x9\n[truncated]', "hunter2x9"),  # no closing quote
    # a bare word after a password name, after "=" or ending its line after ":", is a password too
    ("unquoted word", "password=correcthorse", "correcthorse"),
    ("env word", "export PGPASSWORD=sunshinesun && psql -h db app", "sunshinesun"),
    ("query word", "GET /login?user=bob&password=letmeinplease&next=/", "letmeinplease"),
    ("YAML word", "db:\n  passphrase: letmeinplease\n  pool: 5", "letmeinplease"),
    ("YAML word, comment", "password: sekrit  # dev only", "sekrit"),
    ("word after a key", "password=hunter and PASSWORD: letmein", "letmein"),
    # a name inside one lower-case word is no variable's name: the word is one part
    ("word holding secret", "secret=topsecretvalue", "topsecretvalue"),
    ("word holding password", "POSTGRES_PASSWORD=mysecretpassword", "mysecretpassword"),
    ("flag, two classes", "mysql -u root --password hunter22 app", "hunter22"),
    ("YAML mixed", "password: Hunter2x9", "Hunter2x9"), ("YAML quoted symbol", 'password: "S3cr3t!"', "S3cr3t!"),
    # a MySQL/MariaDB client's -p takes the password joined to it, whatever its shape
    ("mysql -p", "mysql -h db -phunter22 app", "hunter22"),
    ("mysqldump -p", "mysqldump -u root -pcorrecthorse app > app.sql", "correcthorse"),
    ("mysql -p quoted", "cd /srv && mariadb -u root -p'correct horse' app", "correct horse"),
    # a database client's (or wget's) --password takes the word after a blank, in either case
    ("client flag, word", "mysql -u root --password correcthorse app", "correcthorse"),
    ("client flag, upper", "sudo mysqldump --password HUNTERHUNTER app > a.sql", "HUNTERHUNTER"),
    ("mongosh flag", "mongosh --username admin --password letmeinplease db", "letmeinplease"),
    ("wget flag", "wget --user=bob --password sunshine https://x.io/f", "sunshine"),
    # an upper-case word after "=" (.env, shell), not joined: a constant's name is joined
    ("env upper", "DB_HOST=db\nPASSWORD=HUNTERHUNTER\n", "HUNTERHUNTER"),
    ("export upper", "export DB_PASSWORD=ZQXWVUTS && run", "ZQXWVUTS"),
    ("upper with digits", "PASSWORD=HUNTER22X and secret: ZQXWVUTS9", "ZQXWVUTS9"),
    # an upper-case word ending its line after ":" (YAML, a form's dump); after a token or key name
    # too, where only upper case counts (``token = nextchar`` is code); upper-case words joined after
    # a password or secret name, where none of the parts names a secret (``DB_PASSWORD``)
    ("YAML upper word", "db:\n  secret: ZQXWVUTS\n  pool: 5", "ZQXWVUTS"),
    ("YAML upper word, key", "openai:\n  api_key: QWERTYUIOPASDF", "QWERTYUIOPASDF"),
    ("env upper word, key", "export API_KEY=QWERTYUIOPASDF", "QWERTYUIOPASDF"),
    ("env joined upper", "PASSWORD=HUNTER_HUNTER\n", "HUNTER_HUNTER"),
    ("YAML joined upper", "password: HORSE-BATTERY  # ops", "HORSE-BATTERY"),
    # a client's own password flag and the next word, after that client in the same command
    ("mongosh -p", "mongosh -u admin -p hunter --authenticationDatabase admin", "hunter"),
    ("mongodump -p", 'cd /srv && mongodump --host db -u app -p "correct horse" --out dump', "correct horse"),
    ("docker login -p", "docker login -u bob -p hunter22x registry.example.io", "hunter22x"),
    ("helm registry login", "helm registry login r.io -u bob -p letmeinplease", "letmeinplease"),
    ("sshpass -p", "sshpass -p 'hunter' ssh bob@host uptime", "hunter"),
    ("redis-cli -a", "redis-cli -h cache -p 6379 -a sunshine ping", "sunshine"),
    ("redis-cli --pass", "redis-cli --pass HUNTERHUNTER info", "HUNTERHUNTER"),
    ("sqlcmd -P", "sqlcmd -S db -U sa -P hunter22 -Q 'select 1'", "hunter22"),
    ("ldapsearch -w", "ldapsearch -x -D cn=admin,dc=x -w letmein -b dc=x", "letmein"),
    ("twine -p", "twine upload -u bob -p correcthorse dist/*", "correcthorse"),
    ("az login -p", "az login -u bob@x.io -p sunshine22", "sunshine22"),
    # a .netrc entry (one line or several, quoted too); a quoted upper-case word after a token or key name
    ("netrc line", "machine api.example.com login bob password hunter", "hunter"),
    ("netrc lines", "machine git.x.io\n  login bob\n  account ops\n  password correcthorse\n", "correcthorse"),
    ("netrc default", 'default login anonymous password "open sesame"', "open sesame"),
    ("quoted upper word, key", 'openai:\n  api_key: "QWERTYUIOPASDF"\n', "QWERTYUIOPASDF"),
    ("quoted upper word, token", "client = Client(token='ZQXWVUTSRQ', url=u)", "ZQXWVUTSRQ"),
    # openssl's and apksigner's pass:, keytool's and jarsigner's flags, Samba's user%password, lftp's user,password
    ("openssl -passin", "openssl pkcs12 -in a.p12 -passin pass:hunter22 -out a.pem", "hunter22"),
    ("openssl -passout", "openssl genrsa -aes256 -passout 'pass:correct horse' 2048", "correct horse"),
    ("openssl -pass", "openssl enc -aes256 -pass pass:sunshine -in f", "sunshine"),
    ("apksigner --ks-pass", "apksigner sign --ks k.jks --ks-pass pass:letmein app.apk", "letmein"),
    ("keytool -storepass", "keytool -list -keystore k.jks -storepass hunter22", "hunter22"),
    ("keytool -srckeypass", "keytool -importkeystore -srckeypass sunshine -destkeypass x", "sunshine"),
    ("jarsigner -keypass", "jarsigner -keystore k.jks -keypass 'open sesame' app.jar me", "open sesame"),
    ("smbclient -U", "smbclient //srv/share -U bob%hunter22 -c ls", "hunter22"),
    ("rpcclient --user", "rpcclient --user='CORP\\bob%sunshine' dc1", "sunshine"),
    ("lftp -u", "lftp -u bob,correcthorse ftp.example.com", "correcthorse"),
    # a .netrc entry with "password" before "login"; Samba's -U joined to user%password
    ("netrc password first", "machine h.example.com password hunter22 login bob", "hunter22"),
    ("netrc lines password first", "machine git.x.io\n  password correcthorse\n  login bob\n", "correcthorse"),
    ("netrc default password first", "default password sunshine account ops login anonymous", "sunshine"),
    ("smbclient -U joined", "smbclient //srv/share -Ubob%hunter22 -c ls", "hunter22"),
    ("rpcclient -U joined", "rpcclient -U'CORP\\bob%sunshine' dc1", "sunshine"),
    # lower case with digits after any secret name; a subscript's key; a flag's name holding "_"
    ("lower with digits, key", "api_key: sk9f3kq0zz1", "sk9f3kq0zz1"),
    ("lower with digits, token", "token=ghtoken4567abc", "ghtoken4567abc"),
    ("lower with digits, secret", "secret = letmein77", "letmein77"),
    ("subscript, key", 'os.environ["OPENAI_API_KEY"] = "sk9f3kq0zz1"', "sk9f3kq0zz1"),
    ("subscript, password", "config['password'] = 'hunter22'", "hunter22"),
    ("subscripts, password", "settings.DATABASES['default']['PASSWORD'] = 'hunter22'", "hunter22"),
    ("flag with _, token", "python train.py --hub_token hf9f3kq0zz1x --push", "hf9f3kq0zz1x"),
    ("flag with _, secret", "app --client_secret s3cr3tvalue", "s3cr3tvalue"),
    # lower-case letters that read as no word, after a token or key name
    ("random lower, key", "api_key = zxqvbnmlkjhgfd", "zxqvbnmlkjhgfd"),
    ("random lower, quoted token", '{"token": "wxkqzprtvbnmhd"}', "wxkqzprtvbnmhd"),
]

NEGATIVES = [
    "open the password_reset_link=https://example.com/reset in the mail",
    "token_count: 512, max_tokens=1024, tokens: 2048",
    "token = self.tokenizer.eos_token; api_key = settings.OPENAI_API_KEY; secret: com.example.app",
    'auth = request.headers.get("Authorization"); headers={"Authorization": f"Bearer {token}"}',
    "Authorization = request.headers.authorization_header; the Authorization: header is missing",
    'Authorization: Digest username="bob", realm="x", response="6629fae49393a05397450978507c4ef1"',
    '{"secret": false, "password": null, "token": 512}',
    "password: ********", "password=<SECRET_1> and token: [REDACTED]", 'api_key: "<your-api-key>"',
    "the password is stored in vault; rotate the token weekly",
    "password: stored in vault, api_key: YOUR_API_KEY, token=${TOKEN}",
    "password = os.environ; token = getToken(); apiKey: process.env.OPENAI_API_KEY",
    "git push -u origin:feature and docker run -u 1000:1000 img",
    "curl -u bob https://x.io and curl -u $USER:$PASS https://x.io",
    "echo c2Vzc2lvbi1zdGFydGVkLW9r | base64 -d",  # "session-started-ok": no credential inside
    "sha c06c93e5fedd499ea5c591d923b26936f758a9fb9d70ee954387a2fc6ede1e0c /home/u/proj/src/components/Button",
    # weak contexts keep the shape rule: one class, or blanks, is no secret there
    'token: "abc def ghi" api_key: "abcdefghij"', "deploy --password hunter", "psql -h db -U app --password production", "pg_dump --password appdb",
    "echo Ym9iOnBhc3N3b3Jk | base64 -d",  # bob:password, but nothing says it is a credential
    "docker run --user postgres:postgres img", "curl -sL https://x.io/i.sh | sh && git push -u origin:feature",
    # strong contexts still spare stand-ins
    'password: "your password here"', '{"username": "string", "password": "string"}', 'secret: "**** ****"',
    'password: "${DB_PASSWORD}"', 'password: "{{ vault_db_password }}"', "curl -u bob:$PASS https://x.io",
    'password: "YOUR_PASSWORD_HERE"', "curl -u bob:pass https://x.io",  # 4 characters
    "--\npassword hunter2x9", "psql --db\npassword hunter2x9",  # a flag ends its line: no flag
    # things said of a password, not one: absence phrases (quoted too), masks, status words, prose
    'secret: "not set"', 'password: "none provided"', '"password": "<redacted>"', '"password": "********"',
    'password: "(none)"', "DB_PASSWORD=not_set", "password: incorrect", "Password: Expired", "password: required",
    "the password is wrong", "open the password reset link", "--password-file /run/secrets/db.txt",
    "token: 42 tokens used", "--username and --password options can't be used together",
    # code: a variable, an argument, a type, a docstring's field list
    "connect(password=plaintext, user=u)", "password = new_password", "password: Optional[str] = None",
    ":param password: encrypt the private key with it", "self.secret = secret_value",
    # variables and types, by their parts (split at _ - and case changes): pydantic's SecretStr, str, bytes
    "password=hashed_pw", "password=new_password", "secret=secret_key", "password = newPassword",
    "password=passwd", "token = authToken", "password: SecretStr", "token: SecretStr = Field(...)",
    "    api_key: SecretStr | None = None\n", "password: str", "secret: bytes", "password: Optional[SecretStr]",
    # -p of other commands, a prompt, a variable
    "mysql -u root -p app", "mkdir -p build && ssh -p 2222 db", "psql -p 5432 -U app", "mysql -u root -p$MYSQL_PWD app",
    "mysql -u root -p app; grep -phunter2233 x.log", "mysql --port=3306 -P3306 -u root -p",
    # --password of no client (help text, another command), a flag's name, a client's prompt
    "use the mysql --password option to be asked", "mysql -u root -p; deploy --password hunter",
    "mysql --password-file /run/secrets/db", "mysql -u root --db-password hunter", "mysql -u root --password\nhunter",
    # environment variables (sh, cmd, PowerShell), constants, sentinels, an upper-case word after ":"
    "PASSWORD=$SECRET", "mysql --password $MYSQL_PWD app", "mysql --password ${DB_PASS}", "set PASSWORD=%DB_PASS%",
    "$env:DB_PASSWORD = $env:SECRET", "password=$env:DB_PASS", "password=DB_PASSWORD", "secret=SECRET_KEY",
    "PASSWORD=NOT_SET", "password = MISSING", "secret = NOTSET", "f(password=HUNTERHUNTER, x=1)", "secret: OPAQUE",
    # ... after ":" too; a status word; lower case and joined words after a token or key name (code)
    "secret: SECRET_KEY", "password: DB_PASSWORD", "password: $PASSWORD", "password: ${DB_PASS}", "password: %VAR%",
    "password: $env:VAR", "gnutls_session_get_master_secret: REMOVED", "token = nextchar", "api_key: response",
    '"id-token": TEST_OIDC_LOGIN', "PASSWORD=NOT_SET_YET", "secret: ZQXWVUTS in the vault", "token: Identifier",
    # -p of a client that reads no password after it (mysql: a prompt and the database), of another
    # command (a port, a folder), a prompt before the next flag, a variable, the command sshpass wraps
    "mysql -u root -p hunter", "docker run -p 8080:80 img", "ssh -p 2222 host", "redis-cli -p 6379 ping",
    "docker login -u bob --password-stdin && docker run -p foldername img", "mkdir -p buildout && mongosh app",
    "mongosh -u admin -p --quiet", "mongosh -u admin -p", "mongosh -u admin -p $MONGO_PW",
    "sshpass -f pwfile ssh host mkdir -p foldername", "sshpass -p ab ssh host", "podman run -p hostname img",
    # lower case or joined words in quotes after a token or key name (field names, constants), prose
    # about a machine, a .netrc stand-in, openssl's other sources, flags of other commands or in prose
    '"input_token": "marker"', 'tile_global_token="TILE_GLOBAL"', "$prevtoken = 'catalog'", 'token = "nextchar"',
    'api_key: "STRING"', "the machine where you login with password authentication",
    "machine h login bob password $NETRC_PW", "machine h login bob", 'password "hunter22"',
    "openssl rsa -passin env:KEY_PW -in k.pem", "openssl rsa -passin file:/run/pw -passout stdin",
    "openssl rsa -passin pass:$PW", "ssh -storepass hunter22 host", "the -storepass option of keytool",
    "keytool -storepass:env STOREPW -list", "psql -U bob%hunter22 app", "curl -u bob,hunter22 x.io",
    "smbclient -L host -U bob", "lftp -u bob ftp.example.com", "printf -U %s%s",
    # placeholders, prose and code after a token, key, secret or password name; words in lower case,
    # however long, after a token or key name (a field, a variable, a test's stand-in)
    "token: none", "password: <your password>", "key: value", "api_key: ${API_KEY}", 'token = os.environ["X"]',
    "secret: false", "key=sorted", "token: str", "api_key:\n  type: string\n  description: the key to use",
    "token = waiters[0]", "GcsFileSystem(access_token='access')", 'os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"',
    "self._whoami_cache[token] = output", "next_page_token = authorization", 'sas_token="fakesastoken"',
    "token: synchronization", "api_key = qwertyuiopasdf",
    # "]" of a type's subscript, not a mapping's key (real lines of installed packages)
    'source: Literal["client_secret"] = "client_secret"', 'mask_token: Union[str, AddedToken] = "[MASK]",',
    'login_method: Literal["sso", "username_password"] = "username_password",', "foo[token] = a1b2c3d4e5",
    # no .netrc entry: no machine, no login; -U joined of no Samba client
    "the machine password login page", "password hunter22 then login bob", "machine h password hunter22",
    "machine h account ops password hunter22", "psql -Ubob%hunter22 app", "smbclient -L h; ls -Ubob%hunter22",
]


@pytest.fixture(scope="module")
def det() -> Detectors:
    return Detectors(RedactionConfig())


@pytest.mark.parametrize("name,text,value", POSITIVES, ids=[n for n, _, _ in POSITIVES])
def test_credentials_in_context_are_found(det: Detectors, name: str, text: str, value: str) -> None:
    spans = det.scan(text)
    assert ("SECRET", value) in [(s.kind, text[s.start:s.end]) for s in spans], spans
    assert det.find(text) == spans  # the groups that fired cover it
    assert det.triggered(text.encode()) and det.triggered(orjson.dumps({"output": [text]}))


@pytest.mark.parametrize("text", NEGATIVES)
def test_look_alikes_are_left_alone(det: Detectors, text: str) -> None:
    assert det.scan(text) == []


def test_redaction_keeps_the_key_name() -> None:
    red = Redactor(key=b"k")
    text = 'password=hunter2x9 "api_key": "zq8LwT4nVb2Kx" curl -u bob:S3cr3tPa55 https://x.io'
    assert red.redact_text(text, "r") == 'password=<SECRET_1> "api_key": "<SECRET_2>" curl -u bob:<SECRET_3> https://x.io'


def _event(payload: dict) -> dict:
    return {"run_id": "r", "event_id": "r:1", "event_type": "worker_tool_call", "step": 0, "role": "worker",
            "timestamp": "2026-01-31T12:00:00.000Z", "parent_event_id": None, "payload": payload}


def test_structured_args_are_redacted_by_their_key_and_flag() -> None:
    # the value alone holds no clue: its dict key or the argv element before it names it a secret
    args = {"api_key": "zq8LwT4nVb2Kx", "env": {"DB_PASSWORD": "hunter2x9", "PWD": "/home/u"},
            "argv": ["curl", "-u", "bob:S3cr3tPa55", "--token", "ab12cd34ef56", "https://x.io"],
            "token_count": 512, "secret": False, "password": "********", "max_tokens": "1024"}
    ev = _event({"call_id": "c1", "tool": "http", "args": args})
    out = Redactor(key=b"k").redact(ev)["payload"]["args"]
    assert out["api_key"] == "<SECRET_1>" and out["env"] == {"DB_PASSWORD": "<SECRET_2>", "PWD": "/home/u"}
    assert out["argv"] == ["curl", "-u", "bob:<SECRET_3>", "--token", "<SECRET_4>", "https://x.io"]
    assert {k: out[k] for k in ("token_count", "secret", "password", "max_tokens")} == {
        "token_count": 512, "secret": False, "password": "********", "max_tokens": "1024"}
    assert sum(Scanner().scan(ev).values()) == 4  # pass 2 sees them on an unredacted run
    assert Scanner().scan(Redactor().redact(ev)) == {}  # and nothing after pass 1


def test_unredacted_credentials_block_pass2() -> None:
    scanner = Scanner()
    for _, text, _ in POSITIVES:
        assert scanner.scan(_event({"call_id": "c1", "tool": "sh", "args": {"cmd": text}})), text


_NAMES = ["password", "DB_PASSWORD", "passwd", "Passphrase", "client_secret", "SECRET", "token", "X-Api-Key",
          "apikey", "secret_key", "--db-password", "--token", "token_count", "max_tokens", "password_reset_link",
          "PaSsWoRd", "-u", "--user", "key", "monkey", "-p", "-a", "-w", "-P", "--pass", "-U", "-passin", "-storepass",
          "--ks-pass", "login bob password", "login u\naccount a\npassword"]
_SEPS = ["=", ": ", " = ", '": "', "':'", " => ", ":=", " ", "\t", "\t=\t", "\n", '"\t:', "=", ""]
_VALUES = ["hunter2x9", "S3cr3tPa55", "bob:S3cr3tPa55", "512", "false", "********", "<SECRET_1>", "stored",
           "zq8LwT4nVb2Kx&x=1", '"hunter2x9"', "'Hunter2!'", "os.environ", "${TOKEN}", B64_USER_PW, "bob:password",
           '"correct horse"', "'my secret pass'", '"hunter"', '\\"hunter2x9\\"', "HUNTERHUNTER", "correcthorse",
           "bob%S3cr3tPa55", "bob,correcthorse", "pass:correcthorse", "'pass:open sesame'", '"QWERTYUIOP"']
_AROUND = ["", " ", "\n", "x", "é", "\\", '"', "-", "?", "&", "\x1f", "\n\n", "echo ", "\t", "curl ", "--\n", "--x\n",
           "mysql ", "mariadb -u root ", "psql -U app ", "wget ", "mongosh ", "sshpass ", "docker login ", "redis-cli ",
           "ldapsearch -x ", "mkdir ", "keytool ", "openssl ", "smbclient ", "lftp ", "machine h ", "default "]


def test_triggers_cover_fuzzed_credentials_in_context() -> None:
    # whatever scan finds, find finds too, and the triggers fire on bytes and JSON (escapes included)
    det, scanner, rng, hits = Detectors(RedactionConfig()), Scanner(), random.Random(5), 0
    for _ in range(3000):
        parts = [rng.choice(_AROUND), rng.choice(_NAMES), rng.choice(_SEPS), rng.choice(_VALUES), rng.choice(_AROUND)]
        text = "".join(parts[rng.randint(0, 1):])
        spans = det.scan(text)
        assert det.find(text) == spans, text
        if spans:
            hits += 1
            assert det.triggered(text.encode()) and det.triggered(orjson.dumps({"k": [text]})), text
            assert sum(scanner.scan(_event({"call_id": "c", "out": text})).values()) == len(spans), text
    assert hits > 500


@pytest.mark.parametrize("text", ["deploy secret: Python slack", "invoice token: /home/u/proj/thread/now_110.py",
                                  "schema secret: OPAQUE", "key: https://example.com/docs?page=2 ok"])
def test_words_paths_and_urls_after_a_secret_name_stay(det: Detectors, text: str) -> None:
    # prose of agent transcripts ("... token: Number ...") is training text, not a credential
    assert det.scan(text) == []


# Prose of agent transcripts with the secret names as words and no separator after them: nothing is
# found, and the secret-name trigger stays silent, so the detectors do not run on them at all.
PROSE = ["the secret to fast tests is isolation", "press any key to continue", "the token expired, fetch a new key",
         "Output secret to the channel", 'she said "secret" twice', "keys, tokens and secrets rotate weekly",
         "a monkey took the passport", "Passwords must be long; tokenizers split words"]


@pytest.mark.parametrize("text", PROSE)
def test_prose_with_secret_words_stays_and_does_not_trigger(det: Detectors, text: str) -> None:
    assert det.scan(text) == []
    assert not keyword_hit(text.encode()) and not keyword_hit(orjson.dumps({"text": [text, text]}))
    assert "keywords" not in det.fired(text)


@pytest.mark.parametrize("text", ["password: hunter2x9", '"token":"ab12cd34ef56"', "api_KEY\t= zq8LwT4nVb2Kx",
                                  "x --db-password hunter2x9", "curl -u bob:hunter https://x.io"])
def test_secret_names_before_a_separator_trigger(text: str) -> None:
    assert keyword_hit(text.encode()) and keyword_hit(orjson.dumps({"text": text}))


@pytest.mark.parametrize("scheme", ["Ba\u017fic", "BA\u017fIC", "bas\u0131c", "Bas\u0130c"])
def test_auth_schemes_fold_ascii_only_as_the_trigger_does(det: Detectors, scheme: str) -> None:
    # Unicode case folding would take the long s and the dotless/dotted i for "s" and "i": the byte
    # trigger does not, so the detector must not either (scan and find agree)
    text = f"Authorization: {scheme} dXNlcjpwYXNzd29yZA=="
    assert det.scan(text) == det.find(text) == []
    ascii_text = "Authorization: BASIC dXNlcjpwYXNzd29yZA=="
    assert [s.kind for s in det.find(ascii_text)] == ["AUTH_HEADER"]


def test_free_markers_open_the_secrets_group(det: Detectors) -> None:
    # markers found anywhere (a name or host near the value): each, in any case it is written in, opens
    # "secrets" next to a long token run; without one the run alone does not
    run = " aB3dE6gH9kL2mN5pQ8rS1"
    for marker in ("aws", "AWS", "Aws", "hooks.slack.com", "SG.", "eyJ", "xox"):
        assert "secrets" in det.fired(f"{marker}{run}") and "secrets" in det.fired(f"x {marker}:{run}"), marker
    assert "secrets" not in det.fired(f"sg. eyj aw s{run}")  # SG. and eyJ keep their case


def test_dict_keys_of_passwords_and_curl_argv_are_strong_other_argv_flags_are_not() -> None:
    # a dict key's string is a quoted value: after a password or secret name, any shape but a stand-in
    args = {"password": "correct horse battery staple", "db_secret": "opensesame", "PASSPHRASE": "letmein",
            "token": "abcdefghij", "api_key": "my key", "password_hint": "hunter", "secret": "string",
            "mysql": ["mysql", "--password", "hunter"], "curl": ["/usr/bin/curl", "-s", "-u", "bob:hunter", "x.io"],
            "pip": ["pip", "download", "--proxy-user", "bob:hunter"], "git": ["git", "push", "-u", "origin:feature"]}
    ev = _event({"call_id": "c1", "tool": "db", "args": args})
    out = Redactor(key=b"k").redact(ev)["payload"]["args"]
    assert {k: out[k] for k in ("password", "db_secret", "PASSPHRASE")} == {
        "password": "<SECRET_1>", "db_secret": "<SECRET_2>", "PASSPHRASE": "<SECRET_3>"}
    assert {k: out[k] for k in ("token", "api_key", "password_hint", "secret")} == {
        "token": "abcdefghij", "api_key": "my key", "password_hint": "hunter", "secret": "string"}
    # an argv value after a password flag is one, a word too (``--password hunter``); -u is curl's
    # where the list holds curl (or wget), --proxy-user always; git's -u is no user at all
    assert out["mysql"] == ["mysql", "--password", "<SECRET_4>"] and out["git"] == args["git"]
    assert out["curl"] == ["/usr/bin/curl", "-s", "-u", "bob:<SECRET_4>", "x.io"]
    assert out["pip"] == ["pip", "download", "--proxy-user", "bob:<SECRET_4>"]  # the same value, the same mark
    assert Scanner().scan(Redactor().redact(ev)) == {}


def test_unquoted_words_after_password_names_are_redacted_absence_phrases_stay() -> None:
    # through the export's redaction (Redactor) on text and on a record's dict keys and argv
    red = Redactor(key=b"k")
    text = ("DB_PASSWORD=hunter2hunter\nmysql -u root --password hunter22\nmysql -u root -phunter22\n"
            "password=correcthorse\nsecret: \"not set\"\npassword: \"correct horse battery staple\"")
    assert red.redact_text(text, "r") == (
        "DB_PASSWORD=<SECRET_1>\nmysql -u root --password <SECRET_2>\nmysql -u root -p<SECRET_2>\n"
        "password=<SECRET_3>\nsecret: \"not set\"\npassword: \"<SECRET_4>\"")
    args = {"password": "not set", "client_secret": "none provided", "db_password": "(none)",
            "passphrase": "n/a", "PASSWORD": "correct horse", "argv": ["mysql", "--password=x", "--password", "sekrit"]}
    out = Redactor(key=b"k").redact(_event({"call_id": "c1", "tool": "db", "args": args}))["payload"]["args"]
    assert {k: out[k] for k in ("password", "client_secret", "db_password", "passphrase")} == {
        "password": "not set", "client_secret": "none provided", "db_password": "(none)", "passphrase": "n/a"}
    assert out["PASSWORD"] == "<SECRET_1>" and out["argv"] == ["mysql", "--password=x", "--password", "<SECRET_2>"]


def test_authorization_header_of_any_scheme_in_a_record() -> None:
    red = Redactor(key=b"k" * 32)
    rec = {"run_id": "r", "event_type": "worker_tool_call", "payload": {"call_id": "c", "tool": "http", "args": {
        "headers": {"Authorization": "Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b", "Accept": "application/json"}}}}
    out = red.redact(rec)
    assert out["payload"]["args"]["headers"] == {"Authorization": "Token <SECRET_1>", "Accept": "application/json"}
    assert Scanner().scan(rec) and not Scanner().scan(out)
