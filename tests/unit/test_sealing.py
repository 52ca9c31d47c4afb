"""Sealed secrets: what a database dump holds of signing keys and second-factor secrets."""

from __future__ import annotations

import pytest

from app.crypto import Sealer, SealError, is_sealed

KEY = "a-secret-key-of-at-least-32-characters!"


def test_a_sealed_value_opens_only_with_its_key_and_for_its_row() -> None:
    sealer = Sealer(KEY)
    sealed = sealer.seal("JBSWY3DPEHPK3PXP", "staff-totp:1")
    assert is_sealed(sealed) and "JBSWY3DPEHPK3PXP" not in sealed
    assert sealer.open(sealed, "staff-totp:1") == "JBSWY3DPEHPK3PXP"
    assert sealer.seal("JBSWY3DPEHPK3PXP", "staff-totp:1") != sealed, "a new nonce each time"
    with pytest.raises(SealError, match="PORTAL_SECRET_KEY"):
        Sealer(KEY + "x").open(sealed, "staff-totp:1")
    with pytest.raises(SealError):
        sealer.open(sealed, "staff-totp:2")  # copied onto another staff member's row


def test_a_value_stored_before_sealing_comes_back_as_it_is() -> None:
    assert Sealer(KEY).open("JBSWY3DPEHPK3PXP", "staff-totp:1") == "JBSWY3DPEHPK3PXP"
