"""Token counting with tiktoken, from the BPE rank files shipped in `encodings/`: never touches the network.

`tiktoken.get_encoding` downloads its rank files at first use (and caches them in a temp dir); that fails
air-gapped and in CI. We build the two encodings we need ourselves, from package data, with the same
pat_str and special tokens as `tiktoken_ext/openai_public.py`, and check each file's sha256 at load time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from importlib.resources import files
from typing import Any, Final

import tiktoken
from tiktoken.model import encoding_name_for_model

__all__ = [
    "IMAGE_PART_TOKEN_ESTIMATE",
    "count_chat_prompt_tokens",
    "count_text_tokens",
    "encoding_for_model",
]

FALLBACK_ENCODING: Final = "o200k_base"
# Every message is framed as <|start|>{role/name}\n{content}<|end|>\n; the reply is primed with
# <|start|>assistant<|message|> (OpenAI cookbook, "How to count tokens with tiktoken").
TOKENS_PER_MESSAGE: Final = 3
TOKENS_PER_NAME: Final = 1
REPLY_PRIMING_TOKENS: Final = 3
IMAGE_PART_TOKEN_ESTIMATE: Final = 85
"""Fixed estimate for one image part: the base cost of a low-detail image for gpt-4o. High-detail images
cost more (85 + 170 per 512px tile), which we cannot know without fetching and decoding the image."""

_ENDOFTEXT, _ENDOFPROMPT = "<|endoftext|>", "<|endofprompt|>"
_FIM_PREFIX, _FIM_MIDDLE, _FIM_SUFFIX = "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>"
# name → (sha256 of the shipped file, pat_str, special tokens): as in tiktoken_ext/openai_public.py.
_SPECS: Final[dict[str, tuple[str, str, dict[str, int]]]] = {
    "cl100k_base": (
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",  # noqa: E501
        {_ENDOFTEXT: 100257, _FIM_PREFIX: 100258, _FIM_MIDDLE: 100259, _FIM_SUFFIX: 100260, _ENDOFPROMPT: 100276},
    ),
    "o200k_base": (
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "|".join([
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]),
        {_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
    ),
}
SHIPPED_ENCODINGS: Final = frozenset(_SPECS)

_lock = threading.Lock()
_loaded: dict[str, tiktoken.Encoding] = {}


def encoding_file_bytes(name: str) -> bytes:
    """The raw bytes of the shipped `{name}.tiktoken` file (package data)."""
    return files("llmgate.usage").joinpath("encodings", f"{name}.tiktoken").read_bytes()


def _load(name: str) -> tiktoken.Encoding:
    expected_hash, pat_str, special_tokens = _SPECS[name]
    data = encoding_file_bytes(name)
    actual_hash = hashlib.sha256(data).hexdigest()
    if actual_hash != expected_hash:
        raise RuntimeError(f"llmgate's shipped {name}.tiktoken is corrupted: sha256 {actual_hash}, "
                           f"expected {expected_hash}; reinstall llmgate")
    # The format tiktoken.load.load_tiktoken_bpe parses: one "base64(token) rank" per line. We parse the
    # bytes ourselves because load_tiktoken_bpe also writes a copy into tiktoken's cache directory.
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    encoding = tiktoken.Encoding(name, pat_str=pat_str, mergeable_ranks=ranks, special_tokens=dict(special_tokens))
    # The Rust core has copied the ranks; tiktoken keeps this dict only to pickle the Encoding, which llmgate
    # never does. Emptied, it frees ~27 MB of the ~85 MB an encoding costs.
    ranks.clear()
    return encoding


def _encoding(name: str) -> tiktoken.Encoding:
    enc = _loaded.get(name)
    if enc is None:
        with _lock:  # one load per process, even when several threads ask at once
            enc = _loaded.get(name)
            if enc is None:
                enc = _loaded[name] = _load(name)
    return enc


def encoding_for_model(model: str) -> tiktoken.Encoding:
    """The tiktoken encoding for `model`, loaded (lazily, once) from the rank files llmgate ships.

    The model → encoding mapping is tiktoken's own (`tiktoken.model.encoding_name_for_model`: exact names,
    then prefixes such as `gpt-4o-`). Unknown models, and models whose encoding we do not ship (only
    `o200k_base` and `cl100k_base` are shipped: not r50k/p50k/gpt2, nor o200k_harmony, which has the same
    ranks as o200k_base), fall back to `o200k_base`, so counts for them are estimates.
    Raises `RuntimeError` if a shipped file fails its sha256 check.
    """
    return _encoding(_encoding_name(model))


def encoding_is_loaded(model: str) -> bool:
    """Whether `model`'s encoding is in memory already (loading one takes ~0.4 s of CPU and ~60 MB)."""
    return _encoding_name(model) in _loaded


def _encoding_name(model: str) -> str:
    if not isinstance(model, str):
        raise ValueError(f"model must be a string, not {type(model).__name__}")
    try:
        name = encoding_name_for_model(model)
    except KeyError:
        name = FALLBACK_ENCODING
    return name if name in _SPECS else FALLBACK_ENCODING


def count_text_tokens(text: str, model: str) -> int:
    """Tokens in `text` for `model`; special-token strings such as `<|endoftext|>` count as plain text."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, not {type(text).__name__}")
    return len(encoding_for_model(model).encode_ordinary(text))


def _json_tokens(enc: tiktoken.Encoding, value: Any, where: str) -> int:
    try:
        serialized = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"{where} is not JSON-serializable: {exc}") from None
    return len(enc.encode_ordinary(serialized))


def _content_tokens(enc: tiktoken.Encoding, content: Any, where: str) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return len(enc.encode_ordinary(content))
    if not isinstance(content, list):
        raise ValueError(f"{where} must be a string, a list of parts or null, not {type(content).__name__}")
    total = 0
    for j, part in enumerate(content):
        here = f"{where}[{j}]"
        if not isinstance(part, dict):
            raise ValueError(f"{here} must be an object, not {type(part).__name__}")
        kind = part.get("type")
        if kind in ("text", "refusal"):
            text = part.get(kind)
            if not isinstance(text, str):
                raise ValueError(f"{here}.{kind} must be a string, not {type(text).__name__}")
            total += len(enc.encode_ordinary(text))
        elif kind == "image_url":
            total += IMAGE_PART_TOKEN_ESTIMATE
        else:
            raise ValueError(f"{here}.type {kind!r} is not supported for counting (text, refusal, image_url)")
    return total


def count_chat_prompt_tokens(messages: list[Any], model: str, tools: list[Any] | None = None) -> int:
    """Prompt tokens of a chat completion request, by OpenAI's published recipe (the cookbook's
    `num_tokens_from_messages`): 3 tokens per message, +1 per `name`, +3 priming the reply, plus each field.

    `content` may be a string, null, or a list of parts: `text` and `refusal` parts are counted exactly,
    each `image_url` part as `IMAGE_PART_TOKEN_ESTIMATE`; other part types raise `ValueError`. Other
    non-string message fields (e.g. `tool_calls`) and `tools` count as their compact JSON serialization:
    an estimate, since the API renders them in its own, unpublished format.
    Invalid input raises `ValueError` naming the offending item, e.g. `messages[2].content`.
    """
    if not isinstance(messages, list):
        raise ValueError(f"messages must be a list, not {type(messages).__name__}")
    if tools is not None and not isinstance(tools, list):
        raise ValueError(f"tools must be a list or null, not {type(tools).__name__}")
    enc = encoding_for_model(model)
    total = REPLY_PRIMING_TOKENS
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ValueError(f"messages[{i}] must be an object, not {type(message).__name__}")
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            where = f"messages[{i}].{key}"
            if key == "content":
                total += _content_tokens(enc, value, where)
            elif isinstance(value, str):
                total += len(enc.encode_ordinary(value)) + (TOKENS_PER_NAME if key == "name" else 0)
            elif key in ("role", "name") and value is not None:
                raise ValueError(f"{where} must be a string, not {type(value).__name__}")
            elif value is not None:
                total += _json_tokens(enc, value, where)
    for k, tool in enumerate(tools or ()):
        if not isinstance(tool, dict):
            raise ValueError(f"tools[{k}] must be an object, not {type(tool).__name__}")
        total += _json_tokens(enc, tool, f"tools[{k}]")
    return total
