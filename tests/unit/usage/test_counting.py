"""llmgate.usage.counting: shipped rank files, counts equal to tiktoken's, no network, chat recipe, errors."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import tiktoken
import tiktoken.load
from tiktoken_ext import openai_public

from llmgate.usage import counting
from llmgate.usage.counting import (
    IMAGE_PART_TOKEN_ESTIMATE,
    count_chat_prompt_tokens,
    count_text_tokens,
    encoding_for_model,
)

SHIPPED = ("o200k_base", "cl100k_base")
ENCODINGS_DIR = Path(counting.__file__).parent / "encodings"


class TiktokenReference:
    """What tiktoken's own openai_public constructor says about one encoding, with its ranks read from our file."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[tuple[str, str | None]] = []
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("TIKTOKEN_CACHE_DIR", "")  # tiktoken: read the local file, write no cache copy
            mp.setattr(openai_public, "load_tiktoken_bpe", self._load_from_our_file)
            self.spec: dict[str, Any] = openai_public.ENCODING_CONSTRUCTORS[name]()
        (self.url, self.expected_hash), = self.calls
        self.encoding = tiktoken.Encoding(**self.spec)

    def _load_from_our_file(self, url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        self.calls.append((url, expected_hash))
        return tiktoken.load.load_tiktoken_bpe(str(ENCODINGS_DIR / f"{self.name}.tiktoken"))


@pytest.fixture(scope="module")
def reference() -> dict[str, TiktokenReference]:
    return {name: TiktokenReference(name) for name in SHIPPED}


# --- the shipped files -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_file_sha256_is_tiktokens_expected_hash(name: str, reference: dict[str, TiktokenReference]) -> None:
    ref = reference[name]
    assert ref.url.endswith(f"/{name}.tiktoken")
    assert ref.expected_hash is not None and re.fullmatch(r"[0-9a-f]{64}", ref.expected_hash)
    assert hashlib.sha256((ENCODINGS_DIR / f"{name}.tiktoken").read_bytes()).hexdigest() == ref.expected_hash
    assert hashlib.sha256(counting.encoding_file_bytes(name)).hexdigest() == ref.expected_hash


@pytest.mark.parametrize("name", SHIPPED)
def test_our_encoding_is_built_like_tiktokens(name: str, reference: dict[str, TiktokenReference]) -> None:
    ours = counting._encoding(name)
    spec = reference[name].spec
    assert ours.name == spec["name"]
    assert ours._pat_str == spec["pat_str"]
    assert ours._special_tokens == spec["special_tokens"]
    # The ranks live in tiktoken's Rust core (the Python dict is emptied once it is built: counting._load)
    ranks = spec["mergeable_ranks"]
    assert len(ours.token_byte_values()) == len(ranks)
    assert all(ours.decode_single_token_bytes(rank) == token for token, rank in ranks.items())
    assert ours.n_vocab == reference[name].encoding.n_vocab


def test_a_corrupted_file_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(counting, "_loaded", {})
    monkeypatch.setattr(counting, "encoding_file_bytes", lambda name: b"IQ== 0\n")
    with pytest.raises(RuntimeError, match=r"o200k_base\.tiktoken is corrupted: sha256 [0-9a-f]{64}, expected 446a"):
        encoding_for_model("gpt-4o")


# --- counts ------------------------------------------------------------------------------------------------

# Published in OpenAI's cookbook, "How to count tokens with tiktoken" (token ids, hence counts).
@pytest.mark.parametrize(("model", "text", "tokens"), [
    ("gpt-4o-mini", "tiktoken is great!", [83, 8251, 2488, 382, 2212, 0]),
    ("gpt-4", "antidisestablishmentarianism", [519, 85342, 34500, 479, 8997, 2191]),
    ("gpt-4o", "antidisestablishmentarianism", [493, 129901, 376, 160388, 21203, 2367]),
    ("gpt-4", "2 + 2 = 4", [17, 489, 220, 17, 284, 220, 19]),
    ("gpt-4o", "2 + 2 = 4", [17, 659, 220, 17, 314, 220, 19]),
    ("gpt-3.5-turbo", "お誕生日おめでとう", [33334, 45918, 243, 21990, 9080, 33334, 62004, 16556, 78699]),
    ("gpt-4o", "お誕生日おめでとう", [8930, 9697, 243, 128225, 8930, 17693, 4344, 48669]),
])
def test_known_token_ids(model: str, text: str, tokens: list[int]) -> None:
    assert encoding_for_model(model).encode_ordinary(text) == tokens
    assert count_text_tokens(text, model) == len(tokens)


@pytest.mark.parametrize("model", ["gpt-4", "gpt-4o"])
def test_hello_world_is_two_tokens(model: str) -> None:
    assert count_text_tokens("hello world", model) == 2
    assert count_text_tokens("", model) == 0


TEXTS = [
    "hello world",
    "Hello, World! How's it going? I'm fine, they've said, we'll see.",
    "def f(x):\n    return {'a': [1, 2, 3]}\n\n\n\t# comment\r\n",
    "1234567890 3.14159 -42 1e10 0xDEADBEEF",
    "   leading and trailing spaces   ",
    "emoji 👋🏽🚀 and accents: café naïve Ærøskøbing, Ελληνικά, русский, עברית, العربية, हिन्दी, 中文, 한국어",
    "<|endoftext|> <|endofprompt|> <|fim_prefix|> are counted as plain text",
    "https://example.com/path?q=1&r=two#frag /usr/local/bin",
    "lone surrogate \ud800 here",
    "word " * 2000,
]


@pytest.mark.parametrize("name", SHIPPED)
def test_counts_equal_tiktokens_own_encoding(name: str, reference: dict[str, TiktokenReference]) -> None:
    model = {"o200k_base": "gpt-4o", "cl100k_base": "gpt-4"}[name]
    ref = reference[name].encoding
    for text in TEXTS:
        assert count_text_tokens(text, model) == len(ref.encode(text, disallowed_special=())), text[:40]
        assert encoding_for_model(model).encode_ordinary(text) == ref.encode_ordinary(text)


# --- model → encoding ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("model", "name"), [
    ("gpt-4o", "o200k_base"), ("gpt-4o-2024-08-06", "o200k_base"), ("gpt-4o-mini", "o200k_base"),
    ("o1", "o200k_base"), ("gpt-5", "o200k_base"), ("gpt-4.1-mini", "o200k_base"),
    ("gpt-4", "cl100k_base"), ("gpt-4-0613", "cl100k_base"), ("gpt-3.5-turbo-0125", "cl100k_base"),
    ("gpt-35-turbo", "cl100k_base"), ("text-embedding-3-small", "cl100k_base"), ("ft:gpt-4:org::id", "cl100k_base"),
    # unknown models, and encodings we do not ship (p50k, r50k, gpt2, o200k_harmony): o200k_base
    ("llama-3.1-70b", "o200k_base"), ("", "o200k_base"), ("text-davinci-003", "o200k_base"),
    ("davinci", "o200k_base"), ("gpt2", "o200k_base"), ("gpt-oss-20b", "o200k_base"),
])
def test_encoding_for_model(model: str, name: str) -> None:
    assert encoding_for_model(model).name == name


def test_encodings_are_cached() -> None:
    assert encoding_for_model("gpt-4o") is encoding_for_model("o3")
    assert encoding_for_model("gpt-4") is encoding_for_model("gpt-3.5-turbo")


def test_concurrent_first_use_loads_once(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[str] = []
    real_load = counting._load

    def slow_load(name: str) -> tiktoken.Encoding:
        loads.append(name)
        time.sleep(0.05)
        return real_load(name)

    monkeypatch.setattr(counting, "_loaded", {})
    monkeypatch.setattr(counting, "_load", slow_load)
    barrier = threading.Barrier(8)
    results: list[tiktoken.Encoding] = []

    def worker() -> None:
        barrier.wait()
        results.append(encoding_for_model("gpt-4"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loads == ["cl100k_base"]
    assert len(results) == 8 and all(r is results[0] for r in results)


# --- no network ----------------------------------------------------------------------------------------------

OFFLINE_SCRIPT = textwrap.dedent("""
    import socket
    attempts = []

    def refuse(self, *args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled by the test")

    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse

    from llmgate.usage.counting import count_chat_prompt_tokens, count_text_tokens, encoding_for_model

    assert encoding_for_model("gpt-4o").name == "o200k_base"
    assert encoding_for_model("gpt-4").name == "cl100k_base"
    assert count_text_tokens("お誕生日おめでとう", "gpt-4o") == 8
    assert count_text_tokens("お誕生日おめでとう", "gpt-4") == 9
    assert count_chat_prompt_tokens([{"role": "user", "content": "hello world"}], "gpt-4o") == 9
    assert attempts == [], attempts

    # The cut is real: tiktoken's own loader cannot fetch an encoding we do not ship.
    import tiktoken
    try:
        tiktoken.get_encoding("r50k_base")
    except Exception:
        pass
    else:
        raise AssertionError("tiktoken.get_encoding reached the network")
    assert attempts, "the download never tried to connect"
    print("offline ok")
""")


def test_counting_works_with_the_network_unreachable(tmp_path: Path) -> None:
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k.upper() not in {"NO_PROXY", "ALL_PROXY", "DATA_GYM_CACHE_DIR", "TIKTOKEN_CACHE_DIR"}}
    env |= {"TIKTOKEN_CACHE_DIR": str(cache), "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
            "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}
    proc = subprocess.run([sys.executable, "-c", OFFLINE_SCRIPT], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "offline ok"
    assert list(cache.iterdir()) == []  # we neither downloaded nor wrote a cache copy


# --- chat messages -------------------------------------------------------------------------------------------

COOKBOOK_MESSAGES = [
    {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate jargon "
                                  "into plain English."},
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
    {"role": "system", "name": "example_user", "content": "Let's circle back when we have more bandwidth to touch "
                                                          "base on opportunities for increased leverage."},
    {"role": "system", "name": "example_assistant",
     "content": "Let's talk later when we're less busy about how to do better."},
    {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client "
                                "deliverable."},
]


# The cookbook's counts, which it checks against the API's usage.prompt_tokens.
@pytest.mark.parametrize(("model", "expected"), [
    ("gpt-3.5-turbo", 129), ("gpt-4-0613", 129), ("gpt-4", 129), ("gpt-4o", 124), ("gpt-4o-mini", 124),
])
def test_cookbook_example(model: str, expected: int) -> None:
    assert count_chat_prompt_tokens(COOKBOOK_MESSAGES, model) == expected


@pytest.mark.parametrize("model", ["gpt-4", "gpt-4o"])
def test_chat_known_cases(model: str) -> None:
    user = {"role": "user", "content": "hello world"}  # 3 + "user" 1 + 2
    assert count_chat_prompt_tokens([], model) == 3
    assert count_chat_prompt_tokens([user], model) == 9
    assert count_chat_prompt_tokens([user, user], model) == 15
    assert count_chat_prompt_tokens([{**user, "name": "bob"}], model) == 9 + 1 + 1  # "bob" is 1 token, +1 for name
    assert count_chat_prompt_tokens([{"role": "assistant", "content": None}], model) == 3 + 1 + 3
    parts = {"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": " world"}]}
    assert count_chat_prompt_tokens([parts], model) == 9
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}}
    with_image = {"role": "user", "content": [{"type": "text", "text": "hello world"}, image, image]}
    assert count_chat_prompt_tokens([with_image], model) == 9 + 2 * IMAGE_PART_TOKEN_ESTIMATE
    refusal = {"role": "assistant", "content": [{"type": "refusal", "refusal": "hello world"}]}
    assert count_chat_prompt_tokens([refusal], model) == 9


def test_tools_and_tool_calls_count_as_json() -> None:
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
            "properties": {"city": {"type": "string", "description": "Where"}}}}}
    tool_calls = [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]
    enc = encoding_for_model("gpt-4o")

    def as_json(value: Any) -> int:
        return len(enc.encode_ordinary(json.dumps(value, ensure_ascii=False, separators=(",", ":"))))

    user = [{"role": "user", "content": "hello world"}]
    assert count_chat_prompt_tokens(user, "gpt-4o", tools=[tool, tool]) == 9 + 2 * as_json(tool)
    assert count_chat_prompt_tokens(user, "gpt-4o", tools=[]) == 9
    assert count_chat_prompt_tokens(user, "gpt-4o", tools=None) == 9
    call = [{"role": "assistant", "content": None, "tool_calls": tool_calls}]
    assert count_chat_prompt_tokens(call, "gpt-4o") == 3 + 1 + as_json(tool_calls) + 3
    result = [{"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]
    assert count_chat_prompt_tokens(result, "gpt-4o") == 3 + 1 + count_text_tokens("call_1sunny", "gpt-4o") + 3


def _circular() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


@pytest.mark.parametrize(("messages", "tools", "where"), [
    ({"role": "user", "content": "hi"}, None, "messages must be a list"),
    ("hello", None, "messages must be a list"),
    (None, None, "messages must be a list"),
    ([{"role": "user", "content": "hi"}, "hi"], None, "messages[1] must be an object"),
    ([{"role": "user", "content": "hi"}, {"role": "user"}, {"role": "user", "content": 42}], None,
     "messages[2].content must be a string, a list of parts or null"),
    ([{"role": "user", "content": {"type": "text", "text": "hi"}}], None, "messages[0].content must be"),
    ([{"role": "user", "content": [{"type": "text", "text": "hi"}, "hi"]}], None, "messages[0].content[1] must be"),
    ([{"role": "user", "content": [{"type": "text", "text": 3}]}], None, "messages[0].content[0].text must be"),
    ([{"role": "user", "content": [{"type": "text"}]}], None, "messages[0].content[0].text must be"),
    ([{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}], None,
     "messages[0].content[0].type 'input_audio' is not supported"),
    ([{"role": "user", "content": [{"text": "hi"}]}], None, "messages[0].content[0].type None is not supported"),
    ([{"role": 1, "content": "hi"}], None, "messages[0].role must be a string"),
    ([{"role": "user", "name": ["bob"], "content": "hi"}], None, "messages[0].name must be a string"),
    ([{"role": "assistant", "tool_calls": {1, 2}}], None, "messages[0].tool_calls is not JSON-serializable"),
    ([{"role": "assistant", "tool_calls": _circular()}], None, "messages[0].tool_calls is not JSON-serializable"),
    ([], {"type": "function"}, "tools must be a list"),
    ([], ["get_weather"], "tools[0] must be an object"),
    ([], [{"type": "function"}, {"f": object()}], "tools[1] is not JSON-serializable"),
])
def test_invalid_chat_input_raises_value_error(messages: Any, tools: Any, where: str) -> None:
    with pytest.raises(ValueError, match=re.escape(where)):
        count_chat_prompt_tokens(messages, "gpt-4o", tools=tools)


def test_invalid_text_or_model_raises_value_error() -> None:
    with pytest.raises(ValueError, match="text must be a string"):
        count_text_tokens(b"hello", "gpt-4o")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="model must be a string"):
        count_text_tokens("hello", None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="model must be a string"):
        count_chat_prompt_tokens([], 4)  # type: ignore[arg-type]

