"""The config's value types: constants, and the `Annotated` types whose `Meta` constraints say what a key
accepts (ranges, enumerations, URL shapes), shared by the tables of config_schema.py and config_access.py."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_ANTHROPIC_BASE_URL = "https://api.anthropic.com"
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024

ProviderKind = Literal["openai", "azure", "anthropic", "gemini", "vertex", "bedrock", "openrouter", "groq", "together",
                       "mistral", "deepseek", "xai", "fireworks", "perplexity", "ollama", "vllm", "lmstudio"]
DEFAULT_BASE_URLS = {"gemini": "https://generativelanguage.googleapis.com",
                     "vertex": "https://{location}-aiplatform.googleapis.com"}
"""The base URL of a kind whose config may leave it out (`{location}`: the provider's `location`)."""
Capability = Literal["chat", "completions", "embeddings", "images", "audio", "responses", "messages"]


LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")


class ConfigError(ValueError):
    """The configuration is wrong: one line per problem, each naming where (file and line, or environment
    variable), the key and what was expected."""

    def __init__(self, *problems: str) -> None:
        super().__init__(*problems)
        self.problems = problems

    def __str__(self) -> str:
        return "\n".join(self.problems)

    def report(self) -> str:
        """For a terminal: `configuration error: ...`, or `configuration errors:` and one indented line each."""
        if len(self.problems) == 1:
            return f"configuration error: {self.problems[0]}"
        return "configuration errors:\n" + "\n".join(f"  {problem}" for problem in self.problems)


# Constrained types: what a key accepts, checked when the config is decoded. `extra["expected"]` is how an error
# says what was wanted when the value has the right type but breaks the constraint.
Port = Annotated[int, Meta(ge=1, le=65535)]
Count = Annotated[int, Meta(ge=1)]
"""At least one."""
Retained = Annotated[int, Meta(ge=0)]
"""Zero or more (backups kept, retries)."""
FileSize = Annotated[int, Meta(ge=1024)]
"""Bytes; a smaller limit is a mistake (a unit forgotten)."""
Seconds = Annotated[float, Meta(gt=0, extra={"expected": "a number of seconds > 0"})]
Millis = Annotated[float, Meta(ge=0)]
"""Milliseconds, zero or more."""
Ratio = Annotated[float, Meta(gt=0, le=1)]
"""A share in (0, 1]."""
HttpUrl = Annotated[str, Meta(pattern=r"^https?://", extra={"expected": "an http:// or https:// URL"})]
OptionalHttpUrl = Annotated[str, Meta(pattern=r"^(https?://|$)", extra={"expected": "an http:// or https:// URL"})]
LogLevel = Annotated[str, Meta(pattern=f"(?i)^({'|'.join(LOG_LEVELS)})$",
                               extra={"expected": f"one of {', '.join(LOG_LEVELS)} (any case)"})]
Route = Annotated[str, Meta(pattern=r"^\s*(?i:get|post|put|patch|delete) \s*/v1/",
                            extra={"expected": '"METHOD /v1/path" (e.g. "POST /v1/moderations")'})]
"""Matches exactly what `config_checks.parse_route` accepts."""
ModelName = Annotated[str, Meta(min_length=1, extra={"expected": "a model name"})]
ModelPattern = Annotated[str, Meta(pattern=r"^[^*]+\*?$",
                                   extra={"expected": "a model name, optionally ending with one `*`"})]
DatabaseUrl = Annotated[str, Meta(pattern=r"^(postgres://|postgresql://|sqlite:)",
                                  extra={"expected": "postgresql://... or sqlite:///path", "secret": True})]
RedisUrl = Annotated[str, Meta(pattern=r"^(redis://|rediss://|unix://)",
                               extra={"expected": "redis://..., rediss://... or unix://...", "secret": True})]
