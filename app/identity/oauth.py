"""The OAuth 2.0 wire format shared by /connect/token and /connect/introspect: form bodies,
client authentication (RFC 6749 §2.3.1) and error responses (§5.2)."""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import parse_qsl, unquote_plus

MAX_BODY = 8192
NO_STORE = [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]
JSON = (b"content-type", b"application/json")
# RFC 6749 Appendix A allows no control characters in any parameter (NUL cannot even be
# looked up in PostgreSQL).
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class TokenError(Exception):
    """An OAuth 2.0 error response (RFC 6749 §5.2)."""

    def __init__(self, error: str, status: int = 400, retry_after: int = 0) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.retry_after = retry_after

    def body(self) -> bytes:
        # The same bytes for every cause of one error, so the answer tells nothing more.
        return b'{"error":"' + self.error.encode() + b'"}'

    def headers(self) -> list[tuple[bytes, bytes]]:
        headers = [JSON, *NO_STORE]
        if self.retry_after:
            headers.append((b"retry-after", str(self.retry_after).encode()))
        if self.error == "invalid_client" and self.status == 401:
            headers.append((b"www-authenticate", b'Basic realm="token"'))
        return headers


def parse_form(body: bytes, content_type: str) -> dict[str, str]:
    """The form parameters; a repeated parameter or a body that is not a form is refused."""
    if content_type.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        raise TokenError("invalid_request")
    if len(body) > MAX_BODY:
        raise TokenError("invalid_request")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise TokenError("invalid_request") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise TokenError("invalid_request")  # RFC 6749 §3.2: no repeated parameters
        if CONTROL.search(name) or CONTROL.search(value):
            raise TokenError("invalid_request")
        form[name] = value
    return form


def client_credentials(authorization: str | None, form: dict[str, str]) -> tuple[str, str]:
    """client_secret_basic (RFC 6749 §2.3.1, form-encoded then base64) or client_secret_post;
    never both at once."""
    in_body = "client_id" in form or "client_secret" in form
    if authorization:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic" or (in_body and "client_secret" in form):
            raise TokenError("invalid_request")
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise TokenError("invalid_client") from None
        client_id, separator, secret = decoded.partition(":")
        if not separator:
            raise TokenError("invalid_client")
        client_id, secret = unquote_plus(client_id), unquote_plus(secret)
        if CONTROL.search(client_id) or CONTROL.search(secret):
            raise TokenError("invalid_client")
        if "client_id" in form and form["client_id"] != client_id:
            raise TokenError("invalid_request")
        return client_id, secret
    return form.get("client_id", ""), form.get("client_secret", "")
