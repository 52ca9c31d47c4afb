"""Random tokens and their hashes, for e-mailed links, sessions and invitation codes.

Tokens carry 256 bits of randomness, so a plain SHA-256 is enough to store them: a stolen
table gives nothing that can be used, and a lookup by hash costs a microsecond.
"""

import hashlib
import secrets


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
