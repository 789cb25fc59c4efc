"""A database URL as the settings take it: which ones are PostgreSQL's, and one fit to show."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["check_database_url", "redact_url"]

_POSTGRES_SCHEMES = ("postgresql", "postgres")


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
    """``url`` with its password replaced by ``***``, for messages and logs."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "(an unparsable URL)"
    if not password:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
