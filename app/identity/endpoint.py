"""POST /connect/token as a bare ASGI application.

Partner software asks for a token for every batch of API calls, so this one route carries most
of the identity server's traffic. It takes no cookies, renders no page and needs neither the
session nor the CSRF middleware, so it is served here directly: read the form, authenticate the
client (from the process's memory, app.identity.cache), sign, answer. The answers and headers
are those of the rest of the portal's JSON endpoints.
"""

from __future__ import annotations

import logging

import msgspec
from litestar.types import (
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    HTTPScope,
    Receive,
    Send,
)

from app.db import UNAVAILABLE
from app.identity.oauth import JSON, MAX_BODY, NO_STORE, TokenError, client_credentials, parse_form
from app.identity.service import TokenAnswer, TokenService
from app.web.addresses import address_of

log = logging.getLogger(__name__)
RETRY_AFTER = 5


class TokenEndpoint:
    def __init__(self, tokens: TokenService) -> None:
        self.tokens = tokens

    async def __call__(self, scope: HTTPScope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            # IdentityServer's answer to any other method (not 405): invalid_request.
            wrong = TokenError("invalid_request")
            await self._answer(send, wrong.status, wrong.body(), wrong.headers())
            return
        headers: dict[bytes, bytes] = dict(scope["headers"])
        try:
            body = await self._body(receive)
            form = parse_form(body, headers.get(b"content-type", b"").decode("latin-1"))
            authorization = headers.get(b"authorization")
            answer = await self.exchange(
                form,
                authorization.decode("latin-1") if authorization else None,
                address_of(scope.get("client")),
            )
        except TokenError as error:
            await self._answer(send, error.status, error.body(), error.headers())
            return
        except UNAVAILABLE:
            # Never invalid_client for a database that is down: the client did nothing wrong.
            log.warning("token request while the database is unavailable", exc_info=True)
            down = TokenError("temporarily_unavailable", 503, RETRY_AFTER)
            await self._answer(send, down.status, down.body(), down.headers())
            return
        await self._answer(send, 200, msgspec.json.encode(answer), [JSON, *NO_STORE])

    async def exchange(
        self, form: dict[str, str], authorization: str | None, address: str
    ) -> TokenAnswer:
        """The client_credentials grant (RFC 6749 §4.4): the token response, or TokenError.

        As in IdentityServer, the client is authenticated first, and a missing grant type is
        an unsupported one."""
        client_id, secret = client_credentials(authorization, form)
        record = await self.tokens.authenticate(client_id, secret, address)
        if form.get("grant_type") != "client_credentials":
            raise TokenError("unsupported_grant_type")
        scopes = await self.tokens.granted_scopes(record, form.get("scope"), address)
        return await self.tokens.issue(record, scopes)

    @staticmethod
    async def _body(receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise TokenError("invalid_request")
            chunk: bytes = message.get("body", b"")  # type: ignore[assignment]
            size += len(chunk)
            if size > MAX_BODY:
                raise TokenError("invalid_request")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _answer(
        self, send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
        await send(start)
        end: HTTPResponseBodyEvent = {
            "type": "http.response.body",
            "body": body,
            "more_body": False,
        }
        await send(end)
