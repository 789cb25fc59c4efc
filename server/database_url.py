"""A database URL as the settings take it: which ones are PostgreSQL's, and one fit to show."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

__all__ = ["check_database_url", "passwords_in", "redact_url"]

_POSTGRES_SCHEMES = ("postgresql", "postgres")

# ``scheme://`` and the rest of that word: its userinfo is what comes before its last
# ``@`` (a password may hold a raw ``/``, ``?`` or ``@``; when a later ``@`` belongs to
# the query instead, more is hidden than needed, never less).
_URL = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://)(?P<rest>[^\s'\"]*)")
# A password given as a parameter: ``?password=`` in a URL, ``password=`` in a keyword
# DSN (quoted or not), and their other spellings.
_PARAMETER = re.compile(
    r"(?P<key>\b(?:ssl)?(?:password|passwd|pwd|pass)\s*=\s*)"
    r"(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^&;\s]*)",
    re.IGNORECASE,
)
_HIDDEN = "***"


def check_database_url(url: str) -> None:
    """Raise ValueError (with the password hidden) unless ``url`` is a PostgreSQL URL."""
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        scheme = ""
    if scheme not in _POSTGRES_SCHEMES:
        raise ValueError(
            f"--database must be a postgresql:// URL (got {redact_url(url)!r}); "
            "without --database the SQLite file in the data directory is used"
        )


def redact_url(url: str) -> str:
    """``url`` with every password in it replaced by ``***``, for messages and logs.

    Any scheme (``postgresql://``, ``redis://``, ``mysql://`` …): the password of
    ``user:password@``, and every ``password=`` parameter, in a query
    (``?password=…``) or a keyword DSN (``host=db password='…'``). It may be given
    any text holding such URLs, a whole error message included.
    """
    return _PARAMETER.sub(_hide_value, _URL.sub(_hide_userinfo, url))


def passwords_in(url: str) -> list[str]:
    """The passwords ``url`` holds, as written and decoded: what a message that quotes
    them in another form must not show either."""
    found = []
    for match in _URL.finditer(url):
        userinfo, at, _ = match["rest"].rpartition("@")
        if at and ":" in userinfo:
            found.append(userinfo.split(":", 1)[1])
    for match in _PARAMETER.finditer(url):
        value = match["value"]
        if value[:1] in ("'", '"'):
            value = value[1:-1]
        found.append(value)
    found += [unquote(password) for password in found]
    return sorted({p for p in found if p}, key=len, reverse=True)


def _hide_userinfo(match: re.Match[str]) -> str:
    rest = match["rest"]
    userinfo, at, after = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return match[0]
    user = userinfo.split(":", 1)[0]
    return f"{match['head']}{user}:{_HIDDEN}@{after}"


def _hide_value(match: re.Match[str]) -> str:
    return match["key"] + _HIDDEN
