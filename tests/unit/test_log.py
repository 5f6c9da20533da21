"""Secret masking and request ids."""

from llmgate.log import mask_secret, new_request_id


def test_mask_keeps_prefix_and_last_four() -> None:
    assert mask_secret("sk-proj-abcdefghijklmnopqrstuvwxyz") == "sk-****wxyz"
    assert mask_secret("lg-0123456789abcdef") == "lg-****cdef"


def test_mask_never_reveals_short_secrets() -> None:
    assert mask_secret("sk-short") == "sk-****"
    assert mask_secret("abcdefgh") == "****"


def test_mask_empty() -> None:
    assert mask_secret("") == "<none>" and mask_secret(None) == "<none>"


def test_mask_does_not_contain_the_secret() -> None:
    secret = "sk-live-9f8e7d6c5b4a39281706"
    assert secret[3:-4] not in mask_secret(secret)


def test_request_ids_are_unique_hex() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 24 and int(i, 16) >= 0 for i in ids)
