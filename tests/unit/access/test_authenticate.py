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


def test_open_when_no_master_key() -> None:
    assert Authenticator(None).authenticate(None, 0.0) is OPEN
    assert Authenticator("").authenticate("anything", 0.0) is OPEN
