"""Upstream keys at rest."""

import pytest
from cryptography.fernet import Fernet

from llmgate.store.crypto import KeyBox, SecretKeyMissing, fernet_key


def test_round_trip_and_wrong_key() -> None:
    box = KeyBox("a passphrase of some length")
    sealed = box.encrypt("sk-secret")
    assert "sk-secret" not in sealed and box.decrypt(sealed) == "sk-secret"
    assert KeyBox("another passphrase!!").decrypt(sealed) is None
    assert KeyBox(None).decrypt(sealed) is None


def test_refuses_without_a_key() -> None:
    with pytest.raises(SecretKeyMissing, match="LLMGATE_SECRET_KEY"):
        KeyBox(None).encrypt("sk-secret")


def test_a_fernet_key_is_used_as_is() -> None:
    key = Fernet.generate_key().decode()
    assert fernet_key(key) == key.encode()
    assert Fernet(key.encode()).decrypt(KeyBox(key).encrypt("x").encode()) == b"x"
