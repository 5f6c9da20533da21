"""Master-key authentication."""

import pytest

from llmgate.access.authenticate import MASTER, OPEN, Authenticator
from llmgate.errors import Unauthorized


def test_master_key_accepted() -> None:
    assert Authenticator("sk-master").authenticate("sk-master", 0.0) is MASTER


@pytest.mark.parametrize("credential", [None, "", "sk-maste", "sk-masterr", "SK-MASTER", "sk-mästér"])
def test_wrong_or_missing_key_rejected(credential: str | None) -> None:
    with pytest.raises(Unauthorized) as info:
        Authenticator("sk-master").authenticate(credential, 0.0)
    assert info.value.status == 401
    assert ("didn't provide" in info.value.message) is (not credential)


def test_open_when_no_master_key_no_management_token_and_no_tokens() -> None:
    assert Authenticator(None, has_tokens=False).authenticate(None, 0.0) is OPEN
    assert Authenticator("", has_tokens=False).authenticate("anything", 0.0) is OPEN
    assert Authenticator(None, has_tokens=False).access_mode() == "open: no master key, no management token, no tokens"


@pytest.mark.parametrize(("master", "management", "tokens", "why"), [
    (None, True, False, "closed: a management token"),
    (None, False, True, "closed: virtual tokens"),
    ("sk-master", True, True, "closed: a master key, a management token, virtual tokens"),
])
def test_closed_once_anything_tells_callers_apart(master: str | None, management: bool, tokens: bool,
                                                  why: str) -> None:
    auth = Authenticator(master, has_management_token=management, has_tokens=tokens)
    assert not auth.is_open and auth.access_mode() == why
    for credential, message in ((None, "didn't provide"), ("", "didn't provide"), ("sk-guess", "Incorrect")):
        with pytest.raises(Unauthorized) as info:
            auth.authenticate(credential, 0.0)
        assert info.value.status == 401 and message in info.value.message


def test_closed_until_the_store_has_answered() -> None:
    """Before the store says it holds no token, a gateway with no credential configured is not open."""
    assert not Authenticator(None).is_open
