"""Credential patterns of ``Detectors`` and the credentials found by their context, with their triggers.

Shapes with a prefix or a place of their own (``OWN_SECRETS``, ``AUTH``, key blocks) are matched as
they are (``tracebridge.curate.credential_shapes``). Seven more are found by what surrounds the value,
and their value must look like a secret (``secret_shaped``), so that counts, flags, masks and prose
next to a secret name stay training text:

- a secret name right before it (``KEYWORD``): a name ending in ``password``, ``passwd``,
  ``passphrase``, ``secret``, ``token`` or ``api/secret/access/private/auth/client/account`` + ``key``
  (``DB_PASSWORD``, ``x-api-key``, ``client_secret``; not ``token_count``, ``max_tokens``,
  ``password_reset_link``), maybe a closing quote and ``]`` (``env["API_KEY"] = …``), then ``=``, ``:``, ``:=`` or
  ``=>`` (``--name value`` for flags, ``--auth_token value`` too; ``AUTH_OTHER``: an ``Authorization`` header), then
  the value in quotes or up to whitespace, a quote or ``& , ; < > ( ) [ ] { }``; in records also a string under
  such a dict key or after such an argv flag (``keyed_spans``);
- ``-u``/``--user``/``--proxy-user`` then ``user:password`` (curl, wget): the password;
- ``-p`` with the password joined to it after ``mysql``/``mysqldump``/``mariadb``… (``MYSQL_PW``);
- a client's own password flag, a blank and the password after that client (``FLAG_PW``: ``mongosh -p hunter``,
  ``docker login -p``, ``sshpass -p``, ``redis-cli -a``, ``sqlcmd -P``, ``ldapsearch -w``, ``keytool -storepass``;
  in records also after such an argv element, ``argv_clients``);
- ``pass:`` and the password after OpenSSL's ``-passin``/``-passout``/``-pass`` (``PASS_ARG``), and
  ``user%password`` after a Samba client's ``-U`` (or joined to it: ``-Ubob%pw``), ``user,password``
  after lftp's ``-u`` (``USER_PAIR``);
- a .netrc entry's ``password``, before or after its ``login`` (``machine h password pw login bob``: ``NETRC``);
- a base64 run of 16-1024 characters that decodes to printable ASCII holding ``user:password`` or
  anything the credential detectors find (``base64_texts``; ``Detectors`` re-scans it): the run.

Where the context alone says "password" (``secret_shaped``'s ``strong``: a quoted value or a dict key's string after
a ``pass``/``secret`` name, curl's or wget's ``-u``, ``--proxy-user``, a MySQL client's ``-p``, a client's password
flag, ``pass:``, ``user%``/``user,`` after their client, a .netrc entry), any value of 6+ characters but a stand-in
is one, blanks included (``"correct horse battery staple"``). An unquoted value after such a name may be one word,
in lower or upper case, after ``=``, ending its line after ``:`` and after a database client's ``--password`` and a
blank (``password=correcthorse``, ``password: sekrit``, ``secret: ZQXWVUTS``, ``mysql --password hunter``), or
upper-case words joined by ``_``/``-`` (``PASSWORD=HUNTER_HUNTER``); after a token or key name, one upper-case word
(``api_key: QWERTYUIOPASDF``), and one in quotes or a dict key's string (``api_key: "QWERTYUIOPASDF"``); after any
name, lower-case letters that read as no word (``token: zxqvbnmlkjhgfd``). See ``_word_case`` and
``tracebridge.curate.secret_shape`` for the variables, constants (``DB_PASSWORD``), status words and prose left
alone. A value saying the password is absent (``_ABSENT``: ``"not set"``, ``"none provided"``) never is.

Their triggers, ``keyword_hit`` and ``base64_hit``, are in ``tracebridge.curate.triggers`` and
``tracebridge.curate.base64_trigger``. Pure; no I/O.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from tracebridge.curate.base64_trigger import B64_PRINTABLE
from tracebridge.curate.pairs import BLANK as _BLANK
from tracebridge.curate.pairs import NAME as _NAME
from tracebridge.curate.pairs import VALUE as _VALUE
from tracebridge.curate.secret_shape import secret_shaped
from tracebridge.curate.triggers import FLAG_CLIENT_LITERALS

# ------------------------------------------------------------------ credentials by context

KEYWORD = re.compile(rf"(?ai)(?P<name>{_NAME})(?![A-Za-z0-9_.\-])(?:\\*[\"'])?(?P<sub>\])?"
                     rf"(?P<sep>{_BLANK}*(?:=>|:=|[:=]){_BLANK}*|{_BLANK}+){_VALUE}")
# A mapping's key before ``]`` (``env["API_KEY"] =``, ``$cfg['db']['password'] =``): the mapping's name,
# then a quote; not a type's subscript, a title-case name (``Literal["client_secret"] = …``).
_MAP_KEY = re.compile(r"([A-Za-z_$][\w$]*)(?:\[[^\[\]\n]{0,64}\])*\[\\?[\"'][\w.\-]{0,64}\Z")
SECRET_NAME = re.compile(rf"(?ai)-{{0,2}}[A-Za-z0-9_.\-]*{_NAME}")  # a dict key or argv flag, whole
# Names that make a quoted value (or a dict key's string) a password whatever its shape: ``passw…``,
# ``passphrase``, ``…secret…``. After a token or key name a value must still look random.
_STRONG_NAME = re.compile(r"(?ai)pass|secret")
# after a value: its line's end or comment (``\n`` escaped too), or the end of a JSON string it ends
# (``{"cmd": "token: QWERTYUIOPASDF"}`` inside a string: the quote closes the text the value ends)
_LINE_END = re.compile(r"[ \t]*(?:#|\r?\n|\\+[rn]|\\*\"|\Z)")
_FLAG = re.compile(r"--[A-Za-z0-9_-]{0,32}\Z")  # a flag's name before the secret name: `--db-password value`, `--auth_token value`
USER_FLAG = re.compile(r"(?<![\w-])(?P<flag>-u|--user|--proxy-user)(?:[ \t]+|=)"
                       r"(?=([\"']?)([^\s:\"'/@]{1,64}):([^\s\"']{1,256})\2)")
# A client named before a flag in the same command (no ``;``, ``|``, ``&&`` or newline between).
_SAME_COMMAND = r"(?![\w.-])(?:[^;|&\n]|&(?!&))*\Z"
# ``-u``/``--user`` of a curl or wget command, or ``--proxy-user``: the value is a password whatever its shape.
_HTTP_CLIENT = re.compile(rf"(?<![\w.-])(?:curl|wget){_SAME_COMMAND}")
# ``-p`` with the password joined to it (``-phunter22``, ``-p'a b'``; ``-p`` alone prompts), of a
# MySQL or MariaDB client before it in the same command (``_MYSQL_CLIENT``): a password whatever its shape.
MYSQL_PW = re.compile(r"(?<![\w-])-p(?:\"([^\"\n]{1,256})\"|'([^'\n]{1,256})'|([^\s\"'`;&|<>()]{1,256}))")
_MYSQL_NAMES = r"(?:mysql(?:dump|admin|import|check|show|binlog|slap)?|mariadb(?:-dump|-admin)?)"
_MYSQL_CLIENT = re.compile(rf"(?<![\w.-]){_MYSQL_NAMES}{_SAME_COMMAND}")
_MYSQL_ARG = re.compile(rf"{_MYSQL_NAMES}(?:\.exe)?")  # an argv element's base name
# ``--password value`` (a blank between) after a database client or wget in the same command: the
# value is a password even as one word (``mysql -u root --password hunter app``). Help text names
# the flag without a client (``the --username and --password options``). PostgreSQL's clients are
# not listed: their ``--password`` takes no value (it forces a prompt; ``psql --password app`` names
# a database).
_PW_FLAG_CLIENT = re.compile(rf"(?<![\w.-])(?:{_MYSQL_NAMES}|mycli"
                             rf"|mongo(?:sh|dump|restore|export|import)?|clickhouse(?:-client)?|cqlsh|influx|wget)"
                             rf"{_SAME_COMMAND}")
_USER_PW = re.compile(r"[^\s:\"'/@]{1,64}:(\S{1,256})")
# A client's own password flag that takes the password as the next word (``mongosh -u admin -p
# hunter``), after that client in the same command: ``-p`` of the MongoDB shells and tools, sshpass
# (its options come before the command it wraps, so only options may stand between), twine and the
# ``login`` of docker, podman, buildah, skopeo, nerdctl, oras, ``helm registry`` and ``az``; ``-a``
# and ``--pass`` of redis-cli; ``-P`` of sqlcmd; ``-w`` of the OpenLDAP tools. Not MySQL's ``-p``
# (``mysql -p app`` prompts and names the database; its password is joined: ``MYSQL_PW``), nor the
# ``-p`` of ``ssh``, ``docker run`` or ``mkdir``. A value starting with ``-`` is the next flag
# (``mongosh -u admin -p --quiet`` prompts).
_LOGIN = r"(?:docker|podman|buildah|skopeo|nerdctl|oras|helm[ \t]+registry|az)[ \t]+login"
_MONGO = r"mongo(?:sh|dump|restore|export|import|stat|top|files)?"
_LDAP = r"ldap(?:search|add|modify|delete|whoami|passwd|compare|modrdn|exop)"
_KEYTOOL_FLAGS = ("-storepass", "-keypass", "-srcstorepass", "-deststorepass", "-srckeypass", "-destkeypass")
_FLAG_CLIENTS = {"-p": rf"{_MONGO}|twine|{_LOGIN}", "-a": "redis-cli", "--pass": "redis-cli", "-P": "sqlcmd", "-w": _LDAP,
                 **dict.fromkeys(_KEYTOOL_FLAGS, "keytool|jarsigner")}
_FLAG_CLIENT = {f: re.compile(rf"(?<![\w.-])(?:{c}){_SAME_COMMAND}") for f, c in _FLAG_CLIENTS.items()}
_SSHPASS = re.compile(r"(?<![\w.-])sshpass(?:[ \t]+-v)*[ \t]+\Z")  # sshpass's -p, before the command it wraps
_QUOTED_OR_WORD = r"(?:\"([^\"\n]{1,256})\"|'([^'\n]{1,256})'|(?!-)([^\s\"'`;&|<>()]{1,256}))"
FLAG_PW = re.compile(rf"(?<![\w-])(?P<flag>-[apPw]|--pass|-(?:src|dest)?(?:store|key)pass)[ \t]+{_QUOTED_OR_WORD}")
# OpenSSL's ``-passin``/``-passout``/``-pass``/``-password`` and apksigner's ``--ks-pass``/``--key-pass``
# take ``pass:`` and the password (or ``env:VAR``, ``file:path``, ``stdin``: no password): ``pass:``
# after such a flag is their syntax, no client needed.
PASS_ARG = re.compile(r"(?<![\w-])--?(?:ks-|key-)?pass(?:in|out|word)?[ \t]+"
                      r"(?:\"pass:([^\"\n]{1,256})\"|'pass:([^'\n]{1,256})'|pass:([^\s\"'`;&|<>()]{1,256}))")
# ``user%password`` after a Samba client's ``-U``/``--user`` (``smbclient //h/s -U bob%hunter``) and
# ``user,password`` after lftp's ``-u`` (``lftp -u bob,hunter host``), that client before it in the
# same command: the password, whatever its shape.
USER_PAIR = re.compile(r"(?<![\w-])(?P<flag>-[uU]|--user)(?:[ \t]+|=|(?<=-U))(?P<q>[\"']?)[^\s:,%\"'/@]{1,64}"
                       r"(?P<sep>[,%])(?P<pw>[^\s\"']{1,256})(?P=q)")
_PAIR_CLIENTS = {",": "lftp", "%": "smb[a-z]*|rpcclient"}
_PAIR_CLIENT = {sep: re.compile(rf"(?<![\w.-])(?:{c}){_SAME_COMMAND}") for sep, c in _PAIR_CLIENTS.items()}
_PAIR_ARGV = {sep: re.compile(c) for sep, c in _PAIR_CLIENTS.items()}  # an argv element's base name
_PAIR_FLAGS = {",": ("-u", "--user"), "%": ("-U", "--user")}
_PASS_ARG_FLAG = re.compile(r"--?(?:ks-|key-)?pass(?:in|out|word)?")  # an argv element before ``pass:…``
_PAIR_CLIENT_NAMES = re.compile(r"lftp|smb|rpcclient")
# A .netrc entry: ``machine host`` (or ``default``), then two or three of ``login user``, ``account a``
# and ``password pw`` in any order (``machine h password pw login bob``), on one line or several
# (blanks and line ends between), a ``login`` among them: the password, whatever its shape.
_NETRC_VALUE = r"[ \t\r\n]+(?:\"([^\"\n]{1,256})\"|([^\s\"'\\]{1,256}))"
NETRC_PAIR = re.compile(rf"[ \t\r\n]+(login|account|password){_NETRC_VALUE}")
NETRC = re.compile(rf"(?<![\w-])(?:machine[ \t]+[^\s\"']{{1,256}}|default)"
                   rf"(?P<pairs>(?:[ \t\r\n]+(?:login|account|password){_NETRC_VALUE}){{2,3}})")
# any of the clients' literals of the trigger: the text is worth a look
# (and lftp, whose ``-u`` the trigger's ``-u`` covers)
_FLAG_CLIENT_NAMES = re.compile("|".join(sorted({x for xs in FLAG_CLIENT_LITERALS.values() for x in xs} | {"lftp"})))
# In an argv list: the password flags of a client named by an element's base name (``_argv_flags``);
# ``login`` right after one of ``_LOGIN_TOOLS`` (``["docker", "login", "-p", …]``, ``["helm", "registry", "login"]``).
_FLAG_ARGV = {f: re.compile(c) for f, c in _FLAG_CLIENTS.items()}
_SSHPASS_KIND = "-p "  # sshpass's -p: its kind ends where the command it wraps starts
_LOGIN_TOOLS = frozenset({"docker", "podman", "buildah", "skopeo", "nerdctl", "oras", "az"})
_USER_FLAGS = frozenset({"-u", "--user", "--proxy-user"})
# An ``Authorization`` header's random credential after a scheme but Bearer/Basic (``AUTH``) or Digest, or none: ``Token 9944b0…``
_AUTH_VALUE = r"(?!(?:bearer|basic|digest)\b)(?:[A-Za-z][\w-]{1,20}[ \t]+)?(?P<v>[A-Za-z0-9._~+/\-]{12,}=*)"
AUTH_OTHER = re.compile(rf"(?ai)(?<![\w-])(?:proxy-)?authorization\\*[\"']?[ \t]*[:=][ \t]*\\*[\"']?{_AUTH_VALUE}")
_AUTH_KEYED = re.compile(rf"(?ai){_AUTH_VALUE}")
_CLIENTS = frozenset({"curl", "wget", "curl.exe", "wget.exe"})
B64_RUN = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{16,1024}(?![A-Za-z0-9+/])")


def _map_key(text: str, start: int) -> bool:
    """Whether the secret name at ``start`` ends a mapping's quoted key (``_MAP_KEY``)."""
    m = _MAP_KEY.search(text, max(0, start - 192), start)
    return m is not None and not (m.group(1)[:1].isupper() and m.group(1)[1:2].islower())


def _sep(m: re.Match[str]) -> str:
    """The separator of a ``KEYWORD`` match without its blanks, raw or escaped (``\\t``)."""
    return m.group("sep").replace("\\t", " ").strip()


def _flag_before(text: str, start: int) -> bool:
    return _FLAG.search(text, max(0, start - 34), start) is not None


def keyword_spans(text: str) -> list[tuple[int, int]]:
    """Values after a secret name (``password=…``, ``"api_key": "…"``, ``--token …``), passwords
    after ``-u``/``--user`` (``curl -u bob:…``) and after a MySQL client's ``-p`` (``mysql
    -phunter22``), as ``(start, end)``."""
    out = []
    for m in KEYWORD.finditer(text):
        g = "quoted" if m.group("quoted") is not None else "bare"
        after = text[m.end(g):m.end(g) + 1]
        if after in ("(", "[") or not (_sep(m) or _flag_before(text, m.start())):
            continue  # a call or a generic type (``Optional[str]``), not a value; or no separator: prose
        if m.group("sub") and not _map_key(text, m.start()):
            continue  # ``]`` of no mapping's key: a type (``Union[str, AddedToken] = "[MASK]"``)
        password = _STRONG_NAME.search(m.group("name")) is not None
        word = _word_case(text, m, password) if g == "bare" else "upper"  # quoted: ``api_key: "QWERTYUIOP"``
        if secret_shaped(m.group(g), g == "quoted" and password, word):
            out.append((m.start(g), m.end(g)))
    if "-u" in text:
        out += [(m.start(4), m.end(4)) for m in USER_FLAG.finditer(text) if secret_shaped(m.group(4), _client_user(text, m))]
    if "-p" in text and ("mysql" in text or "mariadb" in text):
        for m in MYSQL_PW.finditer(text):
            g = next(i for i in (1, 2, 3) if m.group(i) is not None)
            if _MYSQL_CLIENT.search(text, max(0, m.start() - 1024), m.start()) and secret_shaped(m.group(g), True):
                out.append((m.start(g), m.end(g)))
    if "-" in text and _FLAG_CLIENT_NAMES.search(text) is not None:
        out += _client_flag_spans(text)
    if "login" in text and "password" in text:
        out += _netrc_spans(text)
    out += [m.span("v") for m in AUTH_OTHER.finditer(text) if secret_shaped(m.group("v"))]
    return out


def _netrc_spans(text: str) -> list[tuple[int, int]]:
    """The passwords of the .netrc entries of ``text`` (``NETRC``) that name a login, before or after."""
    out = []
    for m in NETRC.finditer(text):
        pairs = {p.group(1): p for p in NETRC_PAIR.finditer(text, m.start("pairs"), m.end("pairs"))}
        pw = pairs.get("password")
        if "login" in pairs and pw is not None and secret_shaped(pw.group(pw.lastindex), True):
            out.append(_group_span(pw))
    return out


def _group_span(m: re.Match[str]) -> tuple[int, int]:
    """The span of ``m``'s last group that took part (one of a pattern's alternative value groups)."""
    return m.start(m.lastindex), m.end(m.lastindex)


def _client_flag_spans(text: str) -> list[tuple[int, int]]:
    """Passwords after a client's own flag and a blank (``FLAG_PW``, that client before it), after
    ``pass:`` (``PASS_ARG``) and after a Samba client's ``-U user%`` or lftp's ``-u user,`` (``USER_PAIR``)."""
    out = []
    for m in FLAG_PW.finditer(text):
        flag, lo = m.group("flag"), max(0, m.start() - 1024)
        if (_FLAG_CLIENT[flag].search(text, lo, m.start()) or (flag == "-p" and _SSHPASS.search(text, lo, m.start()))) \
                and secret_shaped(m.group(m.lastindex), True):
            out.append(_group_span(m))
    if "pass:" in text:
        out += [_group_span(m) for m in PASS_ARG.finditer(text) if secret_shaped(m.group(m.lastindex), True)]
    if _PAIR_CLIENT_NAMES.search(text) is not None:
        for m in USER_PAIR.finditer(text):
            sep, lo = m.group("sep"), max(0, m.start() - 1024)
            if m.group("flag") in _PAIR_FLAGS[sep] and _PAIR_CLIENT[sep].search(text, lo, m.start()) \
                    and secret_shaped(m.group("pw"), True):
                out.append((m.start("pw"), m.end("pw")))
    return out


def _word_case(text: str, m: re.Match[str], password: bool) -> str:
    """Which one word the bare value of ``m``, a ``KEYWORD`` match, may be (``secret_shaped``'s
    ``word``), after ``=`` unless an argument in code follows (``f(password=hashed, …)``) and after
    ``:`` as the last thing on its line (not the docstring's ``:param password: encrypt the key``):
    after a password or secret name (``password``) one in either case (``"any"``:
    ``password=correcthorse``, ``PGPASSWORD=HUNTERHUNTER``, ``secret: ZQXWVUTS``), also after a
    client's ``--password`` and a blank (``_client_flag``); after a token or key name one in upper
    case (``"upper"``: ``api_key: QWERTYUIOPASDF``). Else none (``""``): help text names flags in
    prose (``the --password options``)."""
    sep, end = _sep(m), m.end("bare")
    case = "any" if password else "upper"
    if "=" in sep:
        return case if text[end:end + 1] not in (",", ")") else ""
    if sep == ":":
        return case if _LINE_END.match(text, end) is not None else ""
    return "any" if not sep and password and _client_flag(text, m) else ""


def _client_flag(text: str, m: re.Match[str]) -> bool:
    """Whether the ``KEYWORD`` match ``m`` is the flag ``--password`` (or ``--passwd``) of a client
    that takes its value after a blank (``_PW_FLAG_CLIENT``, before it in the same command)."""
    start = m.start()
    return m.group("name")[:5].lower() == "passw" and text[max(0, start - 2):start] == "--" \
        and (start < 3 or not (text[start - 3].isalnum() or text[start - 3] in "_-")) \
        and _PW_FLAG_CLIENT.search(text, max(0, start - 1024), start - 2) is not None


def _client_user(text: str, m: re.Match[str]) -> bool:
    """Whether the ``USER_FLAG`` match ``m`` is curl's or wget's (``_HTTP_CLIENT``) or ``--proxy-user``."""
    return m.group("flag") == "--proxy-user" or _HTTP_CLIENT.search(text, max(0, m.start() - 1024), m.start()) is not None


def argv_clients(argv: list[Any] | tuple[Any, ...]) -> list[str]:
    """For each element of an argv list, the client named before it, as in a command's text:
    ``"http"`` after curl or wget (``/usr/bin/curl`` too), ``"mysql"`` after a MySQL or MariaDB
    client (``_MYSQL_ARG``), the client's password flags after a client that reads the password
    after one (``_FLAG_CLIENTS``: ``"-p"`` after mongosh, sshpass (up to the command it wraps) or
    ``docker login``, ``"-a --pass"`` after redis-cli), else ``""``; the last one named counts."""
    out, kind, before = [], "", ("", "")  # the two elements before (``login`` right after its tool)
    for arg in argv:
        out.append(kind)
        if isinstance(arg, str):
            base = arg.rsplit("/", 1)[-1]
            if kind == _SSHPASS_KIND and arg[:1] != "-" and before[1][:1] != "-":
                kind = ""  # the command sshpass wraps starts (after its options and their values)
            if base in _CLIENTS:
                kind = "http"
            elif _MYSQL_ARG.fullmatch(base):
                kind = "mysql"
            elif sep := next((sep for sep, rx in _PAIR_ARGV.items() if rx.fullmatch(base)), ""):
                kind = sep  # "%" after a Samba client, "," after lftp
            elif flags := " ".join(f for f, rx in _FLAG_ARGV.items() if rx.fullmatch(base)):
                kind = flags  # "-p", "-a --pass"…
            elif base == "sshpass":
                kind = _SSHPASS_KIND
            elif base == "login" and (before[1] in _LOGIN_TOOLS or before == ("helm", "registry")):
                kind = "-p"
            before = (before[1], base)
    return out


def keyed_spans(name: str, value: str, argv: bool = False, client: str = "") -> list[tuple[int, int]]:
    """The secret in ``value``, a record's string under the dict key (``argv``: after the argv
    element) ``name``: all of it after a secret name, the password after ``-u``/``--user``, or
    after ``-p`` joined to it in a MySQL client's argv (``client`` ``"mysql"``: ``-phunter22``), or
    after one of the client's password flags (``client`` ``"-p"``, ``"-a --pass"``…:
    ``["sshpass", "-p", "hunter"]``). A dict key's string is quoted in JSON: after a password or
    secret name it is ``strong``, as is the password of ``--proxy-user``, of ``-u``/``--user`` in
    curl's or wget's argv (``client`` ``"http"``), of a MySQL client's ``-p`` and of a client's
    password flag."""
    name, v = name.strip().strip("\"'"), value.strip()
    if not argv and name.lower() in ("authorization", "proxy-authorization") and (m := _AUTH_KEYED.fullmatch(v)):
        return [(value.index(v) + m.start("v"), value.index(v) + m.end("v"))] if secret_shaped(m.group("v")) else []
    if argv and client == "%" and v[:2] == "-U" and len(v) > 2:
        name, v = "-U", v[2:]  # Samba's -U joined to user%password: ``["smbclient", "-Ubob%hunter"]``
    if argv and client[:1] == "-" and name in client.split():  # a client's own password flag
        return [(value.index(v), value.index(v) + len(v))] if secret_shaped(v, True) and v[:1] != "-" else []
    if argv and (client in _PAIR_FLAGS and name in _PAIR_FLAGS[client] or v[:5] == "pass:" and _PASS_ARG_FLAG.fullmatch(name)):
        user, sep, pw = v.partition(client if client in _PAIR_FLAGS else ":")  # bob%pw, bob,pw; pass:pw
        start = value.index(v) + len(user) + 1
        return [(start, start + len(pw))] if sep and user and secret_shaped(pw, True) else []
    if argv and client == "mysql" and v.startswith("-p"):
        start = value.index("-p") + 2
        return [(start, start + len(v) - 2)] if secret_shaped(v[2:], True) else []
    if name in _USER_FLAGS:
        m = _USER_PW.fullmatch(v)
        if m is None or not secret_shaped(m.group(1), client == "http" or name == "--proxy-user"):
            return []
        v = m.group(1)
    elif not SECRET_NAME.fullmatch(name):
        return []
    else:
        password = _STRONG_NAME.search(name) is not None
        word = ("any" if password else "") if argv else "upper"  # a dict key's string is quoted: as ``_word_case``
        if not secret_shaped(v, not argv and password, word):
            return []
    start = value.index(v)
    return [(start, start + len(v))]


def base64_texts(text: str) -> list[tuple[int, int, str]]:
    """Base64 runs of ``text`` that decode to printable ASCII: ``(start, end, decoded)``, ``end``
    after any ``=`` padding. What is a credential in them is for the caller to decide."""
    out = []
    for m in B64_RUN.finditer(text):
        run = m.group()
        if len(run) % 4 == 1:
            continue
        try:
            raw = base64.b64decode(run + "=" * (-len(run) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        if B64_PRINTABLE.issuperset(raw):
            end = m.end()
            while end < len(text) and end - m.end() < 2 and text[end] == "=":
                end += 1
            out.append((m.start(), end, raw.decode("ascii").strip()))
    return out


def user_password(decoded: str) -> bool:
    """Whether ``decoded`` is ``user:password`` with a ``secret_shaped`` password."""
    m = _USER_PW.fullmatch(decoded)
    return m is not None and secret_shaped(m.group(1))
