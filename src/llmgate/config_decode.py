"""Checks a config value against its msgspec type and finds every problem, not only the first (msgspec stops at
one): each Struct field, array item and table entry is checked on its own against its annotated type, constraints
included, and each problem keeps its key path and a plain-words message ("expected a number, got \"10s\"")."""

from __future__ import annotations

import difflib
import json
import re
import types
import typing
from typing import Any, NamedTuple

import msgspec
from msgspec import inspect as mi

from llmgate.toml_lines import KeyPath


class Problem(NamedTuple):
    """One thing wrong in the configuration."""

    path: KeyPath
    """Where: `("providers", 0, "timeouts", "idle_s")`."""
    message: str
    """What was expected, e.g. `expected a number > 0`."""
    got: str | None = None
    """The wrong value as written, e.g. `"10s"` (left out where the value is shown otherwise, or secret)."""


class _Bad:
    """A value that cannot be decoded, even leaving its wrong parts out."""


BAD: Any = _Bad()


def check(value: object, kind: Any, path: KeyPath, problems: list[Problem]) -> Any:
    """Check `value` (as tomllib or the environment gives it) against the type `kind`, adding every problem to
    `problems`. Returns the value to decode: `value` with each wrong scalar that has a default left out (so the
    checks between sections can still run on the rest), or BAD when a wrong part cannot be left out."""
    base = _strip_annotated(kind)
    if isinstance(base, type) and issubclass(base, msgspec.Struct):
        return _check_struct(value, base, path, problems)
    origin, args = typing.get_origin(base), typing.get_args(base)
    if origin in (types.UnionType, typing.Union) and len(args) == 2 and type(None) in args:
        return value if value is None else check(value, next(a for a in args if a is not type(None)), path, problems)
    if origin is list or (origin is tuple and len(args) == 2 and args[1] is Ellipsis):
        if not isinstance(value, list):
            return _check_scalar(value, kind, path, problems)
        items = [check(item, args[0], (*path, i), problems) for i, item in enumerate(value)]
        return BAD if any(item is BAD for item in items) else _check_scalar(items, kind, path, problems)
    if origin is dict:
        if not isinstance(value, dict):
            return _check_scalar(value, kind, path, problems)
        entries = {_check_scalar(key, args[0], (*path, key), problems): check(item, args[1], (*path, key), problems)
                   for key, item in value.items()}
        return BAD if any(k is BAD or v is BAD for k, v in entries.items()) else entries
    return _check_scalar(value, kind, path, problems)


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def from_env(raw: str, kind: Any) -> Any:
    """An environment variable's text as the value it stands for, to be checked like the file's: numbers parsed,
    on/off flags read, comma-separated lists split. ValueError saying what was expected when it is not one."""
    info, _ = unwrap(mi.type_info(kind))
    if isinstance(info, mi.BoolType):
        flag = raw.strip().lower()
        if flag not in _TRUE and flag not in _FALSE:
            raise ValueError("expected 1/true/yes/on or 0/false/no/off")
        return flag in _TRUE
    if isinstance(info, mi.VarTupleType | mi.ListType):
        return [item.strip() for item in raw.split(",") if item.strip()]
    if isinstance(info, mi.IntType | mi.FloatType):
        number = int if isinstance(info, mi.IntType) else float
        try:
            return msgspec.convert(raw.strip(), number, strict=False)
        except msgspec.ValidationError:
            raise ValueError(f"expected {_kind(info)}") from None
    return raw


def _strip_annotated(kind: Any) -> Any:
    return typing.get_args(kind)[0] if typing.get_origin(kind) is typing.Annotated else kind


def _check_struct(value: object, struct: type[msgspec.Struct], path: KeyPath, problems: list[Problem]) -> Any:
    if not isinstance(value, dict):
        problems.append(Problem(path, "expected a table", shown(value)))
        return BAD
    fields = {field.encode_name: field for field in msgspec.structs.fields(struct)}
    checked: dict[str, Any] = {}
    is_bad = False
    for key, item in value.items():
        field = fields.get(key)
        if field is None:
            if struct.__struct_config__.forbid_unknown_fields:
                problems.append(Problem((*path, key), _unknown_key(key, list(fields))))
            continue
        result = check(item, field.type, (*path, key), problems)
        if result is BAD:
            is_bad = is_bad or field.required or not _is_scalar(field.type)
            continue  # left out: the default is decoded instead, so what depends on the rest can be checked
        checked[key] = result
    for name, field in fields.items():
        if field.required and name not in value:
            problems.append(Problem((*path, name), "required, missing"))
            is_bad = True
    return BAD if is_bad else checked


def _unknown_key(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f'unknown key (did you mean "{close[0]}"?)' if close else "unknown key"


def _check_scalar(value: Any, kind: Any, path: KeyPath, problems: list[Problem]) -> Any:
    """msgspec decides (constraints included); the message is ours."""
    try:
        msgspec.convert(value, kind)
    except msgspec.ValidationError:
        info, extra = unwrap(mi.type_info(kind))
        if typing.get_origin(_strip_annotated(kind)) is typing.Literal:  # in the order declared, not msgspec's
            info = mi.LiteralType(typing.get_args(_strip_annotated(kind)))
        problems.append(Problem(path, f"expected {expected(value, info, extra)}",
                                None if extra.get("secret") else shown(value)))
        return BAD
    return value


def unwrap(info: mi.Type) -> tuple[mi.Type, dict[str, Any]]:
    """The type without its metadata and `| None` (TOML has no null), and its `Meta.extra`."""
    extra: dict[str, Any] = {}
    while True:
        if isinstance(info, mi.Metadata):
            extra = {**(info.extra or {}), **extra}
            info = info.type
        elif isinstance(info, mi.UnionType) and any(isinstance(t, mi.NoneType) for t in info.types):
            rest = [t for t in info.types if not isinstance(t, mi.NoneType)]
            if len(rest) != 1:
                return info, extra
            info = rest[0]
        else:
            return info, extra


def _is_scalar(kind: Any) -> bool:
    info, _ = unwrap(mi.type_info(kind))
    return isinstance(info, mi.IntType | mi.FloatType | mi.StrType | mi.BoolType | mi.LiteralType)


def expected(value: object, info: mi.Type, extra: dict[str, Any]) -> str:
    """What `info` wants, in words: only the kind when `value` is not even of that kind ("a number"), else the
    constraint too ("a number > 0", or `extra["expected"]`)."""
    kind = _kind(info)
    if not _is_kind(value, info):
        return kind
    return str(extra["expected"]) if "expected" in extra else kind + _limits(info)


def _kind(info: mi.Type) -> str:
    if isinstance(info, mi.LiteralType):
        return "one of " + ", ".join(json.dumps(v) for v in info.values)
    if isinstance(info, mi.UnionType):
        return " or ".join(_kind(unwrap(t)[0]) for t in info.types)
    names = {mi.IntType: "an integer", mi.FloatType: "a number", mi.StrType: "a string", mi.BoolType: "true or false",
             mi.VarTupleType: "an array", mi.ListType: "an array", mi.DictType: "a table", mi.StructType: "a table"}
    return names.get(type(info), type(info).__name__.removesuffix("Type").lower())


def _is_kind(value: object, info: mi.Type) -> bool:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    tests = {mi.IntType: isinstance(value, int) and not isinstance(value, bool), mi.FloatType: number,
             mi.StrType: isinstance(value, str), mi.BoolType: isinstance(value, bool),
             mi.VarTupleType: isinstance(value, list), mi.ListType: isinstance(value, list),
             mi.DictType: isinstance(value, dict), mi.LiteralType: False}
    return tests.get(type(info), True)


def _limits(info: mi.Type) -> str:
    if isinstance(info, mi.StrType):
        pattern = f" matching /{info.pattern}/" if info.pattern else ""
        return (" (not empty)" if info.min_length == 1 else "") + pattern
    if isinstance(info, mi.VarTupleType | mi.ListType):
        return f" of at least {info.min_length} items" if info.min_length else ""
    if not isinstance(info, mi.IntType | mi.FloatType):
        return ""
    low = (info.ge, "[", ">=") if info.ge is not None else (info.gt, "(", ">") if info.gt is not None else None
    high = (info.le, "]", "<=") if info.le is not None else (info.lt, ")", "<") if info.lt is not None else None
    if low and high:
        if isinstance(info, mi.IntType) and low[1] == "[" and high[1] == "]":
            return f" from {low[0]} to {high[0]}"
        return f" in {low[1]}{low[0]}, {high[0]}{high[1]}"
    if low or high:
        bound, _, sign = low or high  # type: ignore[misc]
        return f" {sign} {bound}"
    return ""


def shown(value: object) -> str:
    """A value as it would be written in TOML (tables and arrays only named), cut when long."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 60 else text[:56] + '..."'
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array" if value else "an empty array"
    return str(value)


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def format_path(path: KeyPath) -> str:
    """`("providers", 0, "timeouts", "idle_s")` → `providers[0].timeouts.idle_s`; keys that are not plain names
    quoted (`prices."gpt-4o"`)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if _IDENTIFIER.fullmatch(part) else json.dumps(part, ensure_ascii=False)
            out += f".{name}" if out else name
    return out
