"""ui/forms.py: form values decoded by the management API's Structs, errors by field."""

from __future__ import annotations

import pytest

from llmgate.admin.schemas import ProjectCreate, TokenCreate
from llmgate.errors import Conflict
from llmgate.ui.forms import FORM, FormErrors, decode, gateway_errors, key_lines, names


def errors_of(values: dict[str, object], type_: type) -> dict[str, str]:
    with pytest.raises(FormErrors) as caught:
        decode(values, type_)
    return caught.value.errors


def test_typed_numbers_become_the_apis_values() -> None:
    token = decode({"project_id": "p", "rpm_limit": "60", "budget_cost": "2.5"}, TokenCreate)
    assert token.rpm_limit == 60 and token.budget_cost == 2.5


def test_each_broken_limit_is_named_by_its_field() -> None:
    assert errors_of({"project_id": "p", "rpm_limit": "abc"}, TokenCreate) == {"rpm_limit": "Enter a whole number."}
    assert errors_of({"project_id": "p", "max_requests": "0"}, TokenCreate) == {
        "max_requests": "Enter a whole number of at least 1."}
    assert errors_of({"name": ""}, ProjectCreate) == {"name": "Required."}
    assert errors_of({}, ProjectCreate) == {"name": "Required."}
    assert errors_of({"name": "x" * 201}, ProjectCreate) == {"name": "At most 200 characters."}


def test_a_management_error_goes_next_to_its_param_or_on_the_form() -> None:
    assert gateway_errors(Conflict("taken", param="name"), ("name",)) == {"name": "taken"}
    assert gateway_errors(Conflict("revoked"), ("name",)) == {FORM: "revoked"}


def test_lists_and_key_lines() -> None:
    assert names("a, b\nc  d,,") == ["a", "b", "c", "d"]
    assert key_lines("openai = sk-1\n\nanthropic=sk-2=x\n") == {"openai": "sk-1", "anthropic": "sk-2=x"}
    with pytest.raises(FormErrors) as caught:
        key_lines("openai=sk-1\nno equals sign")
    assert caught.value.errors == {"upstream_keys": "Line 2: write each key as provider=key."}
