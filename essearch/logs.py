"""Logging for the command line: ESSEARCH_LOG_LEVEL or -v, quiet transports, no secrets.

The Elasticsearch transport logs a warning with a traceback for every retry; a user sees the one
line that explains the failure instead, unless they ask for more with -v or a lower log level.
Every record passes a filter that blanks the configured secrets (and the base64 form of the basic
auth header), so not even DEBUG output shows a password or key.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable
from typing import IO, Any

MASK = "**********"
# Loggers that narrate each retry (with a traceback) or each HTTP exchange.
CHATTY = ("elastic_transport", "urllib3", "httpx", "httpcore", "aiohttp")
_HANDLER_NAME = "essearch-cli"


def level_from(verbose: int, configured: str | None) -> int:
    """-v/-vv win; otherwise ESSEARCH_LOG_LEVEL (a name or a number), else WARNING."""
    if verbose:
        return logging.INFO if verbose == 1 else logging.DEBUG
    if configured:
        text = str(configured).strip().upper()
        if text.isdigit():
            return int(text)
        value = logging.getLevelName(text)
        if isinstance(value, int):
            return value
    return logging.WARNING


class RedactSecrets(logging.Filter):
    """Replace every secret (and its base64 encodings) in a record's final text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        forms: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= 3:
                forms.add(secret)
                forms.add(base64.b64encode(secret.encode()).decode())
        self.forms = sorted(forms, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for form in self.forms:
            text = text.replace(form, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.forms:
            return True
        message = self.scrub(record.getMessage())
        if record.exc_info:
            message += "\n" + self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
            record.exc_text = None
        record.msg, record.args = message, None
        return True


def settings_secrets(settings: Any) -> list[str]:
    """The secret strings in a Settings object, plus `user:password` as basic auth sends it."""
    out: list[str] = []
    es = settings.es
    for value in (es.password, es.api_key, getattr(settings.embedder, "api_key", None)):
        if value is not None:
            out.append(value.get_secret_value())
    if es.username and es.password is not None:
        out.append(f"{es.username}:{es.password.get_secret_value()}")
    return out


def configure_logging(
    verbose: int, configured: str | None, secrets: Iterable[str] = (), stream: IO[str] | None = None
) -> int:
    """Install (once, replacing an earlier one) the CLI's handler; returns the level used."""
    level = level_from(verbose, configured)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root.addHandler(handler)
    root.setLevel(level)
    quiet = verbose == 0 and level >= logging.WARNING
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.ERROR if quiet else logging.NOTSET)
    return level
