"""Keep secrets out of the logs.

Passwords, client secrets and tokens never reach a log call. The one place a secret shows up
anyway is a URL: the e-mailed links (activation, password reset, a school administrator's access
link) carry their token in the path, and access logs and error logs print paths (also inside the
`next=` of a sign-in page, percent-encoded). Every handler
gets a filter that replaces such tokens with "[verborgen]".
"""

from __future__ import annotations

import logging
import re

# A slash as it is, or percent-encoded once or twice: a link opened before signing in comes
# back as the `next=` of the sign-in page (`?next=%2Fbackoffice%2Ftoegang%2F<token>`).
SLASH = r"(?:/|%2[Ff]|%252[Ff])"
CAPABILITY_PATH = re.compile(
    rf"({SLASH}(?:activeren|wachtwoord-herstellen|backoffice{SLASH}toegang){SLASH})"
    rf"(?!applicaties{SLASH})[A-Za-z0-9_\-]{{12,}}"
)
HIDDEN = r"\1[verborgen]"


def redact(text: str) -> str:
    return CAPABILITY_PATH.sub(HIDDEN, text)


class RedactCapabilityLinks(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


def install() -> None:
    """Put the filter on every handler there is (the root's, uvicorn's, Litestar's queue)."""
    loggers = [
        logging.getLogger(),
        *(logging.getLogger(name) for name in ("uvicorn", "uvicorn.access", "uvicorn.error")),
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, RedactCapabilityLinks) for f in handler.filters):
                handler.addFilter(RedactCapabilityLinks())
