"""The rules behind stages/zoo.py: every setting of the zoo file has one, so a wrong type or an unknown value
fails while the zoo loads, naming the model or profile, the setting, the value and what is allowed, rather
than deep inside a training run. Imports nothing heavy: building the Luigi graph loads the zoo.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple


class UnknownName(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class InvalidSetting(ValueError):
    """A setting of the wrong type, outside its allowed values, or at odds with another setting."""

    def __init__(self, where: str | None, detail: str):
        super().__init__(f"{where}: {detail}" if where else detail)
        self.where, self.detail = where, detail


class Rule(NamedTuple):
    accepts: Callable[[Any], bool]
    expected: str  # completes "<setting> <value> is not ..."


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # YAML's `true` must not pass for 1


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


BOOLEAN = Rule(lambda value: isinstance(value, bool), "true or false")
TEXT = Rule(lambda value: isinstance(value, str) and value != "", "a non-empty string")
POSITIVE_NUMBER = Rule(lambda value: _is_number(value) and value > 0, "a number > 0")
NON_NEGATIVE_NUMBER = Rule(lambda value: _is_number(value) and value >= 0, "a number >= 0")
PROBABILITY = Rule(lambda value: _is_number(value) and 0 <= value <= 1, "a number in [0, 1]")
FRACTION = Rule(lambda value: _is_number(value) and 0 < value < 1, "a number in (0, 1)")
MAPPING = Rule(lambda value: isinstance(value, Mapping), "a mapping")


def integer(minimum: int) -> Rule:
    return Rule(lambda value: _is_int(value) and value >= minimum, f"an integer >= {minimum}")


def one_of(allowed: tuple[str, ...]) -> Rule:
    return Rule(lambda value: isinstance(value, str) and value in allowed, f"one of {allowed}")


def list_of(allowed: tuple[str, ...]) -> Rule:
    # a bare string is refused: tuple("cutmix") would quietly become six one-letter names
    return Rule(lambda value: isinstance(value, (list, tuple)) and all(isinstance(item, str) and item in allowed
                                                                       for item in value),
                f"a list of items from {allowed}")


def optional(rule: Rule, say_null: bool = True) -> Rule:
    """``rule`` or null; ``say_null=False`` where another check already says when null is wrong."""
    return Rule(lambda value: value is None or rule.accepts(value),
                f"null or {rule.expected}" if say_null else rule.expected)


def instance(cls: type, expected: str) -> Rule:
    return Rule(lambda value: isinstance(value, cls), expected)


def check_value(where: str | None, label: str, value, rule: Rule) -> None:
    if not rule.accepts(value):
        raise InvalidSetting(where, f"{label} {value!r} is not {rule.expected}")


def check(where: str | None, rules: Mapping[str, Rule], obj, prefix: str = "") -> None:
    """Every field of the dataclass ``obj`` against its rule, in the rules' order."""
    for name, rule in rules.items():
        check_value(where, prefix + name, getattr(obj, name), rule)


def build(cls, values, where: str):
    """``cls(**values)`` from a zoo-file mapping; an unknown, missing or invalid setting names ``where``.

    The class's own checks (run on every construction, ``dataclasses.replace`` included) only know the object;
    the loader knows which model of which profile it is building, so their errors are re-raised with that.
    """
    prefix = getattr(cls, "SETTING_PREFIX", "")
    if not isinstance(values, Mapping):
        raise InvalidSetting(where, f"{prefix}{values!r} is not a mapping of settings")
    fields = dataclasses.fields(cls)
    known = {field.name for field in fields}
    unknown = set(values) - known
    if unknown:
        raise UnknownName(f"{where}: unknown {prefix}setting(s) {sorted(unknown, key=str)}; known: {sorted(known)}")
    missing = [field.name for field in fields if field.name not in values
               and field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING]
    if missing:
        raise InvalidSetting(where, f"missing {prefix}setting(s) {missing}")
    try:
        return cls(**values)
    except InvalidSetting as error:
        raise InvalidSetting(where, error.detail) from None
    except UnknownName as error:
        raise UnknownName(f"{where}: {error}") from None
