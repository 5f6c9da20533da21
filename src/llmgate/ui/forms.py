"""Form fields → the management API's request Structs (its types and limits are the only validation), and its
errors → a message per field, shown next to the field it concerns."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import msgspec

from llmgate.errors import GatewayError

T = TypeVar("T")
FORM = ""
"""The key of an error about the form as a whole."""
_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$\.(?P<field>[A-Za-z_]+)[^`]*`)?$")
_MISSING = re.compile(r"missing required field `(?P<field>[A-Za-z_]+)`")
_WORDING = (
    (re.compile(r"^Expected `str` of length >= 1$"), "Required."),
    (re.compile(r"^Expected `str` of length <= (\d+)$"), r"At most \1 characters."),
    (re.compile(r"^Expected `int(?: \| null)?`, got `\w+`$"), "Enter a whole number."),
    (re.compile(r"^Expected `float(?: \| null)?`, got `\w+`$"), "Enter a number."),
    (re.compile(r"^Expected `int` >= (\d+)$"), r"Enter a whole number of at least \1."),
    (re.compile(r"^Expected `int` <= (\d+)$"), r"Enter a whole number of at most \1."),
    (re.compile(r"^Expected `float` > 0\.0$"), "Enter an amount above 0."),
)


class FormErrors(Exception):
    """What is wrong with a form: field name → message (FORM: the form as a whole)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k or 'form'}: {v}" for k, v in errors.items()))
        self.errors = errors


def humane(message: str) -> str:
    """msgspec's wording of a broken limit, as a form says it."""
    for pattern, wording in _WORDING:
        if pattern.match(message):
            return pattern.sub(wording, message)
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


def validation_errors(error: msgspec.ValidationError) -> dict[str, str]:
    """A msgspec error as {field: message}: the field its path (`$.rpm_limit`) or a missing field names."""
    text = str(error)
    missing = _MISSING.search(text)
    if missing:
        return {missing.group("field"): "Required."}
    match = _AT.match(text)
    assert match is not None  # the pattern matches any text
    return {match.group("field") or FORM: humane(match.group("message"))}


def gateway_errors(error: GatewayError, fields: Iterable[str]) -> dict[str, str]:
    """A management API error next to the field its `param` names, or on the form when it names none of them."""
    return {error.param if error.param in set(fields) else FORM: error.message}


def decode(values: Mapping[str, Any], type_: type[T]) -> T:
    """The Struct the management API would decode from these values (strings converted: the form's `"60"` is
    the API's 60); FormErrors naming the field when a value breaks its type or limits."""
    try:
        return msgspec.convert(dict(values), type_, strict=False)
    except msgspec.ValidationError as exc:
        raise FormErrors(validation_errors(exc)) from None


def text(form: Mapping[str, Any], name: str) -> str:
    """A field's value, stripped ('' when absent)."""
    return str(form.get(name) or "").strip()


def names(value: str) -> list[str]:
    """A list typed into one field: separated by commas, spaces or new lines."""
    return [part for part in re.split(r"[\s,]+", value) if part]


def key_lines(value: str, field: str = "upstream_keys") -> dict[str, str]:
    """`provider=key`, one a line, as {provider: key}; FormErrors naming the line that has no `=`."""
    keys: dict[str, str] = {}
    for number, line in enumerate(value.splitlines(), 1):
        if not line.strip():
            continue
        provider, equals, key = line.partition("=")
        if not equals or not provider.strip() or not key.strip():
            raise FormErrors({field: f"Line {number}: write each key as provider=key."})
        keys[provider.strip()] = key.strip()
    return keys


def only_given(values: Mapping[str, Any]) -> dict[str, Any]:
    """The values the user filled in (an empty field takes the API's default)."""
    return {k: v for k, v in values.items() if v not in ("", None)}
