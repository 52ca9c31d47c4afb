"""The OAuth 2.0 wire format shared by /connect/token and /connect/introspect: form bodies,
client authentication (RFC 6749 §2.3.1) and error responses (§5.2).

The headers and the accepted bodies are IdentityServer's, because today's integrations were
written against it: PHP's curl with an array posts multipart/form-data, and IdentityServer
answered `application/json; charset=UTF-8` with `no-store, no-cache, max-age=0`.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from urllib.parse import parse_qsl, unquote_plus

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

MAX_BODY = 8192
NO_STORE = [(b"cache-control", b"no-store, no-cache, max-age=0"), (b"pragma", b"no-cache")]
JSON = (b"content-type", b"application/json; charset=UTF-8")
URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
# RFC 6749 Appendix A allows no control characters in any parameter (NUL cannot even be
# looked up in PostgreSQL).
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# A malformed body is the client's mistake and gets invalid_request; the parser's warning for
# each one would let anybody fill the logs.
logging.getLogger("python_multipart.multipart").setLevel(logging.ERROR)


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
    """The form parameters of a urlencoded or multipart body; a repeated parameter, a file, a
    control character or a body that is not a form is refused."""
    if len(body) > MAX_BODY:
        raise TokenError("invalid_request")
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == URLENCODED:
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise TokenError("invalid_request") from None
    elif media_type == MULTIPART:
        pairs = _multipart_fields(body, content_type)
    else:
        raise TokenError("invalid_request")
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise TokenError("invalid_request")  # RFC 6749 §3.2: no repeated parameters
        if CONTROL.search(name) or CONTROL.search(value):
            raise TokenError("invalid_request")
        form[name] = value
    return form


class _Part:
    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.data = bytearray()
        self.header_name = bytearray()
        self.header_value = bytearray()


def _multipart_fields(body: bytes, content_type: str) -> list[tuple[str, str]]:
    """(name, value) of each part of a multipart/form-data body (RFC 7578), with
    python-multipart's parser. Only plain fields: a part with a file name is refused."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise TokenError("invalid_request")
    parts: list[_Part] = []
    finished: list[bool] = []

    def header_end() -> None:
        part = parts[-1]
        part.headers[bytes(part.header_name).lower()] = bytes(part.header_value)
        part.header_name.clear()
        part.header_value.clear()

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": lambda: parts.append(_Part()),
            "on_header_field": lambda data, start, end: parts[-1].header_name.extend(
                data[start:end]
            ),
            "on_header_value": lambda data, start, end: parts[-1].header_value.extend(
                data[start:end]
            ),
            "on_header_end": header_end,
            "on_part_data": lambda data, start, end: parts[-1].data.extend(data[start:end]),
            "on_end": lambda: finished.append(True),
        },
        max_size=MAX_BODY,
    )
    try:
        parser.write(body)
        parser.finalize()
    except (MultipartParseError, ValueError):
        raise TokenError("invalid_request") from None
    if not finished:
        raise TokenError("invalid_request")  # cut off before the closing boundary
    fields = []
    for part in parts:
        disposition, parameters = parse_options_header(part.headers.get(b"content-disposition"))
        name = parameters.get(b"name")
        if disposition != b"form-data" or name is None or b"filename" in parameters:
            raise TokenError("invalid_request")
        try:
            fields.append((name.decode("utf-8"), part.data.decode("utf-8")))
        except UnicodeDecodeError:
            raise TokenError("invalid_request") from None
    return fields


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
