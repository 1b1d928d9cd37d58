"""Whether a value found after a secret name (or a client's password flag) is worth redacting:
``secret_shaped`` and the words, stand-ins and variable names it leaves alone. Used by
``tracebridge.curate.credentials``; pure, no I/O."""

from __future__ import annotations

import re

# A URL "password" that is a template slot, not a value: ${DB_PASSWORD}, {password}, <pass>, %s, ***,
# and an environment variable of cmd (``%DB_PASS%``) or PowerShell (``$env:DB_PASS``); JSON's escaped line
# ends after it too (a PEM key in JSON text redacted to ``"private_key": "<PRIVATE_KEY_1>\\n"``).
URL_PW_TEMPLATE = re.compile(r"^(?:\$\{?[A-Za-z_]\w*\}?|\{+[^{}]*\}+|<[^<>]*>|%\(?\w*\)?s|\*+"
                             r"|%[A-Za-z_]\w*%|\$env:[A-Za-z_]\w*)(?:\\+[nr])*$")
# Values that are no secret: a number, a boolean or null, a dotted name in code (``os.environ``,
# ``process.env.API_KEY``), a path or URL (``/home/u/x.py``, ``https://…``: a password in a URL is
# ``URL_PASSWORD``'s), a mask or redaction mark (``********``, ``[REDACTED]``, ``<SECRET_1>``), a YAML tag
# (Ansible's ``!vault``, Home Assistant's ``!secret`` before the name of its value, CloudFormation's ``!Ref``).
_NOT_SECRET = re.compile(r"(?ai)[-+]?\d+(?:[.,]\d+)*|true|false|null|none|nil|yes|no|on|off|undefined"
                         r"|[a-z_$][\w$]*(?:\.[a-z_$][\w$]*)+|(?:~|\.{1,2})?/[\w.\-/]*|[a-z][a-z0-9+.\-]*://\S*"
                         r"|.*redacted.*|[*x.\-#•]+"
                         r"|![A-Za-z]+(?:[_\-:][A-Za-z]+)*")  # a YAML tag: ``password: !vault |``, ``!secret wifi_pw``
# A dotted value one of whose parts is random (16+ characters, upper and lower case and a digit) is no
# name in code: a Discord bot token (``MTIzNDU2Nzg5MDEyMzQ1Njc4.GabCdE.…``) or another dotted token.
_RANDOM_PART = re.compile(r"(?<![^.])(?=[^.]{16})(?=[^.]*\d)(?=[^.]*[a-z])(?=[^.]*[A-Z])")
# Stand-ins for a password in docs, forms and schemas: ``your_password``, ``YOUR-SECRET-HERE``,
# ``<placeholder>``, ``example``, and the type names of API examples (``{"password": "string"}``).
_PLACEHOLDER = re.compile(r"(?ai)(?<![a-z0-9])(?:your|here|placeholder|example)(?![a-z0-9])"
                          r"|\A(?:string|required|optional|hidden|masked|sensitive|empty|unset|omitted)\Z")
# What a form, log or doc writes for a password that is not there (``"not set"``, ``"none provided"``,
# ``(none)``, ``no password``): a short, closed list, so that a passphrase of words is still a secret.
_ABSENT = re.compile(r"(?ai)[(<\[]?(?:(?:not|none|never)[ _-]?(?:set|provided|given|specified|configured|defined"
                     r"|available|applicable|required|needed|shown|supplied|entered)|no[ _-]?(?:password|passphrase"
                     r"|secret|value)|none)[)>\]]?")
# A value after a secret name that names a variable or a type, not a password: letters and ``_``/``-``
# only (``_IDENTIFIER``), one of whose parts, split at the joiners and at case changes (``_NAME_PART``:
# ``new_password``, ``hashedPw``, ``SecretStr``, ``APIKeyHeader``), is one of ``_NAME_WORDS``. Parts,
# not substrings: a lower-case word is one part, so ``topsecretvalue`` is a password, ``passwd`` a name.
_NAME_WORDS = frozenset({"pass", "passwd", "password", "passphrase", "pwd", "pw", "secret", "secrets", "token", "key",
                         "cred", "creds", "credential", "credentials", "hash", "hashed", "auth", "str", "bytes"})
_IDENTIFIER = re.compile(r"[A-Za-z]+(?:[_-][A-Za-z]+)*")
_NAME_PART = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")
# A bare one-class word after a password or secret name that is no password: a word of logs and docs
# saying what the password is or became (``incorrect``, ``expired``, ``required``, ``plaintext``), a
# sentinel of code (``password = MISSING``, ``NOTSET``), a word of help text after a flag (``option``).
_STATUS_WORD = re.compile(r"(?ai)[a-z]+ed|(?:in)?(?:correct|valid|secure)|unknown|default|optional|sensitive"
                          r"|mismatch|pending|success(?:ful)?|failure|error|prompt|plaintext|random|strong|weak"
                          r"|blank|empty|unset|missing|hidden|string|length|policy|manager|notset|sentinel"
                          r"|nothing|options?|commands?|flags?|arguments?|switch(?:es)?|instead|opaque")
# An exception's name, maybe dotted and with a traceback line's colon (``KeyError:``, ``requests.HTTPError``): a
# log's line after a secret name (``secret: KeyError: 'session_id'``), no value of it
_EXCEPTION = re.compile(r"(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Warning|Exit|Interrupt|Fault):?")
_WORD_JOINERS = frozenset("_-.")
_VOWELS = frozenset("aeiouy")
_JOINED = re.compile(r"[_.\-\s]")


def secret_shaped(value: str, strong: bool = False, word: str = "") -> bool:
    """Whether a value after a secret name is worth redacting: 6+ characters, no template slot
    (``${X}``, ``{x}``, ``<x>``, ``%s``), no ``_NOT_SECRET``, no absence phrase (``_ABSENT``: ``not
    set``, ``none provided``), no placeholder (its longest part one character repeated:
    ``ghp_XXXX…``, ``********``). In a ``strong`` context (a quoted value after a password or secret
    name, ``curl -u user:…``) that is enough, blanks included (``correct horse battery staple``),
    but for the stand-ins of ``_PLACEHOLDER``. Otherwise no blank, no word, and two or more
    character classes of lower case, upper case, digits and symbols other than the joiners ``_-.``
    (``hunter2x9``, ``S3cr3t``, ``zq8Lw…``; not ``stored``, ``YOUR_API_KEY``, ``my-secret-name``), or
    lower-case letters that read as no word (``_random_letters``: ``zxqvbnmlkjhgfd``), and
    no variable's or type's name (``_names_a_variable``: ``newPassword``, ``SecretStr``);
    but where the name and separator allow (``word``, from ``_word_case``) one word is one too,
    where ``_one_word_ok`` says so: in either case (``"any"``, after a ``pass``/``secret`` name:
    ``correcthorse``, ``HUNTERHUNTER``) or in upper case (``"upper"``, after a token or key name:
    ``QWERTYUIOPASDF``); after a ``pass``/``secret`` name also upper-case words joined by the
    joiners, none of them a status word (``HUNTER_HUNTER``; not ``DB_PASSWORD``, ``NOT_SET_YET``)."""
    if len(value) < 6 or URL_PW_TEMPLATE.match(value) or _ABSENT.fullmatch(value) or (
            _NOT_SECRET.fullmatch(value) and not ("." in value and _RANDOM_PART.search(value))):
        return False
    if len(set(max(_JOINED.split(value), key=len))) <= 1:
        return False  # a placeholder or mask: its longest part one character repeated
    if strong:
        return _PLACEHOLDER.search(value) is None
    if any(c.isspace() for c in value):
        return False  # prose
    if word != "any" and any(c.isalpha() and not c.isascii() and c.lower() == c.upper() for c in value):
        return False  # letters of a script without case (``token: 我們今天需要檢查…``): text, not a random token
    if _EXCEPTION.fullmatch(value):
        return False  # ``token: TypeError: expected str``
    if _names_a_variable(value):
        return False  # ``password = new_password``, ``token: SecretStr = Field(...)``
    if value.isalpha() and (value.islower() or value.isupper() or value.istitle()):
        if value.islower() and _random_letters(value):
            return True  # lower-case letters that read as no word: ``token: zxqvbnmlkjhgfd``
        return bool(word) and _one_word_ok(value, word)  # a word (``stored``, ``Python``), no random string
    if word == "any" and value.isupper() and _IDENTIFIER.fullmatch(value):  # words joined: ``HUNTER_HUNTER``
        return all(_one_word_ok(p, word) for p in _JOINED.split(value) if len(p) > 2) and _ABSENT.search(value) is None
    classes = (any(c.islower() for c in value), any(c.isupper() for c in value), any(c.isdigit() for c in value),
               any(not c.isalnum() and c not in _WORD_JOINERS for c in value))
    return sum(classes) >= 2


def _one_word_ok(word: str, case: str) -> bool:
    """Whether ``word``, letters in one case after a secret name and no variable's name
    (``_names_a_variable``: ``passwd``), is a secret: in lower or upper case where ``case`` is
    ``"any"`` (after a password or secret name: ``password=correcthorse``, ``PASSWORD=HUNTERHUNTER``,
    ``secret: ZQXWVUTS``), in upper case only where it is ``"upper"`` (after a token or key name:
    ``api_key: QWERTYUIOPASDF``; not the code of ``token = nextchar``); never title case (a heading's
    or sentence's word, ``Password: Minimum``); no status word (``_STATUS_WORD``: ``REMOVED``,
    ``OPAQUE``), no stand-in."""
    return (word.isupper() or (case == "any" and word.islower())) and _STATUS_WORD.fullmatch(word) is None \
        and _PLACEHOLDER.search(word) is None


def _random_letters(word: str) -> bool:
    """Whether ``word``, lower-case letters, reads as no word of prose or code: 12+ letters with five
    consonants in a row or fewer than one vowel (``y`` counted) in five (``zxqvbnmlkjhgfd``; not
    ``nextchar``, ``authorization``, ``synchronization``). About 7 in 10 random 12-letter strings
    and 9 in 10 of 20 letters are; 1 in 200 of the 12+ letter words of the docs and code of the
    installed Python packages is (``openxmlformats``), and none that follows a token or key name."""
    if len(word) < 12:
        return False
    vowels = run = longest = 0
    for c in word:
        if c in _VOWELS:
            vowels, run = vowels + 1, 0
        else:
            run += 1
            longest = max(longest, run)
    return longest >= 5 or vowels * 5 < len(word)


def _names_a_variable(value: str) -> bool:
    """Whether ``value`` is a variable's or a type's name (see ``_NAME_WORDS``)."""
    return _IDENTIFIER.fullmatch(value) is not None and any(
        p.lower() in _NAME_WORDS for p in _NAME_PART.findall(value))
