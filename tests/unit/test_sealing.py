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


def test_a_new_secret_key_opens_what_the_previous_one_sealed_and_reseals_it() -> None:
    old, new = Sealer(KEY), Sealer(KEY + "-new", previous=(KEY,))
    sealed = old.seal("JBSWY3DPEHPK3PXP", "staff-totp:1")
    assert new.open(sealed, "staff-totp:1") == "JBSWY3DPEHPK3PXP"
    assert new.stale(sealed, "staff-totp:1") and new.stale("JBSWY3DPEHPK3PXP", "staff-totp:1")
    resealed = new.reseal(sealed, "staff-totp:1")
    assert not new.stale(resealed, "staff-totp:1")
    # Once every instance runs the new key, the old one can go.
    assert Sealer(KEY + "-new").open(resealed, "staff-totp:1") == "JBSWY3DPEHPK3PXP"
    with pytest.raises(SealError):
        Sealer(KEY + "-new").open(sealed, "staff-totp:1")


def test_previous_keys_come_from_the_environment() -> None:
    from app.config import load_settings

    settings = load_settings(
        env={"PORTAL_SECRET_KEY": KEY, "PORTAL_PREVIOUS_SECRET_KEYS": "een-oude, nog-een-oude"}
    )
    assert settings.previous_secret_keys == ("een-oude", "nog-een-oude")
