"""Security headers on every response, with a strict Content-Security-Policy.

No inline script, no eval, no third-party origin: scripts and styles come from /static only.
"""

from __future__ import annotations

from litestar.types import BeforeMessageSendHookHandler, Message, Scope

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

# Mails shown in the development mailbox carry the inline styles every mail client needs.
MAIL_PREVIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)


def base_headers(production: bool) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (b"x-frame-options", b"DENY"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"cross-origin-resource-policy", b"same-origin"),
        (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
    ]
    if production:
        headers.append((b"strict-transport-security", b"max-age=63072000; includeSubDomains"))
    return headers


def security_headers_hook(production: bool) -> BeforeMessageSendHookHandler:
    """A before-send hook, so that every response gets the headers, 404s for unknown paths too.

    A response may bring its own Content-Security-Policy (the mailbox's mail preview); every
    other header here replaces one the response set."""
    headers = base_headers(production)
    replaced = {name for name, _ in headers}
    csp = (b"content-security-policy", CSP.encode())

    async def add_headers(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        kept = [
            (name, value)
            for name, value in message.get("headers", ())
            if name.lower() not in replaced
        ]
        if not any(name.lower() == csp[0] for name, _ in kept):
            kept.append(csp)
        message["headers"] = kept + headers

    return add_headers
