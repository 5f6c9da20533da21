"""`llmgate serve`: what it logs at start."""

from llmgate.cli.serve import without_password


def test_urls_are_logged_without_their_password() -> None:
    assert without_password("postgresql://app:s3cr3t@db:5432/llm") == "postgresql://app:****@db:5432/llm"
    assert without_password("redis://:pw@cache:6379/0") == "redis://:****@cache:6379/0"
    assert without_password("redis://cache:6379/0") == "redis://cache:6379/0"
