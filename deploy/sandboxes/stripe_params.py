"""Stripe's form-encoded parameters: `metadata[order]=42`, `expand[0]=latest_charge`.

The SDK sends nested dicts as `a[b]=v` and lists as `a[0]=v` (curl users write `a[]=v`); this
turns them back into values and reads them with Stripe's own validation messages, so a request
the real API would refuse is refused here too instead of passing silently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping

from deploy.sandboxes.stripe_errors import invalid

ParamValue = str | list["ParamValue"] | dict[str, "ParamValue"]
Params = dict[str, ParamValue]

_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


def _split_key(key: str) -> list[str]:
    head, bracket, rest = key.partition("[")
    if not bracket:
        return [key]
    tail = "[" + rest
    segments = _SEGMENT.findall(tail)
    if "".join(f"[{s}]" for s in segments) != tail:
        raise invalid(f"Invalid parameter name: {key}", key)
    return [head, *segments]


def _listify(value: ParamValue) -> ParamValue:
    """Dicts keyed only by indexes (or `[]`) become lists, in index order."""
    if isinstance(value, dict):
        items = {k: _listify(v) for k, v in value.items()}
        if items and all(k.isdigit() or k.startswith("\0") for k in items):
            return [items[k] for k in sorted(items, key=_index_order)]
        return items
    return value


def _index_order(key: str) -> tuple[int, int]:
    return (1, int(key[1:])) if key.startswith("\0") else (0, int(key))


def parse_form(pairs: Iterable[tuple[str, str]]) -> Params:
    """Nested parameters from flat `(key, value)` pairs, as Stripe's API reads them."""
    root: dict[str, ParamValue] = {}
    for position, (key, value) in enumerate(pairs):
        segments = _split_key(key)
        node = root
        for depth, segment in enumerate(segments):
            name = f"\0{position}" if segment == "" else segment
            if depth == len(segments) - 1:
                node[name] = value
                break
            child = node.setdefault(name, {})
            if not isinstance(child, dict):
                raise invalid(f"Invalid parameter name: {key}", key)
            node = child
    result = _listify(root)
    assert isinstance(result, dict)
    return result


def fingerprint(pairs: Iterable[tuple[str, str]]) -> str:
    """What idempotency compares: the parameters, whatever order they came in."""
    return json.dumps(sorted(pairs))


def reject_unknown(params: Mapping[str, ParamValue], allowed: Iterable[str]) -> None:
    known = set(allowed) | {"expand"}
    for name in params:
        if name not in known:
            raise invalid(f"Received unknown parameter: {name}", name, "parameter_unknown")


def text(params: Mapping[str, ParamValue], name: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise invalid(f"Invalid string: {name} must be a string", name)
    return value


def required_text(params: Mapping[str, ParamValue], name: str) -> str:
    value = text(params, name)
    if value is None:
        raise invalid(f"Missing required param: {name}.", name, "parameter_missing")
    return value


def integer(params: Mapping[str, ParamValue], name: str) -> int | None:
    value = text(params, name)
    if value is None:
        return None
    if not re.fullmatch(r"-?\d+", value):
        raise invalid(f"Invalid integer: {value}", name, "parameter_invalid_integer")
    return int(value)


def positive_amount(params: Mapping[str, ParamValue], name: str) -> int | None:
    """An amount in the smallest currency unit, at least 1, as Stripe requires."""
    value = integer(params, name)
    if value is not None and value < 1:
        raise invalid(
            "This value must be greater than or equal to 1.", name, "parameter_invalid_integer"
        )
    return value


def boolean(params: Mapping[str, ParamValue], name: str) -> bool | None:
    value = text(params, name)
    if value is None:
        return None
    if value not in ("true", "false"):
        raise invalid(f"Invalid boolean: {value}", name)
    return value == "true"


def choice(params: Mapping[str, ParamValue], name: str, options: tuple[str, ...]) -> str | None:
    value = text(params, name)
    if value is not None and value not in options:
        listed = ", ".join(options[:-1]) + f", or {options[-1]}"
        raise invalid(f"Invalid {name}: must be one of {listed}", name)
    return value


def metadata(params: Mapping[str, ParamValue]) -> dict[str, str]:
    """`metadata[k]=v` pairs, within Stripe's limits (50 keys, 40-char keys, 500-char values)."""
    raw = params.get("metadata")
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise invalid("Invalid hash", "metadata")
    if len(raw) > 50:
        raise invalid("Metadata can have a maximum of 50 keys.", "metadata")
    result: dict[str, str] = {}
    for key, value in raw.items():
        assert isinstance(value, str)
        if len(key) > 40 or len(value) > 500:
            raise invalid("Metadata keys are at most 40 and values 500 characters.", "metadata")
        if value:  # Stripe unsets a key posted with an empty value
            result[key] = value
    return result


def expand(params: Mapping[str, ParamValue]) -> list[str]:
    raw = params.get("expand")
    if raw is None:
        return []
    values = raw if isinstance(raw, list) else [raw]
    if not all(isinstance(v, str) for v in values):
        raise invalid("Invalid array", "expand")
    return [v for v in values if isinstance(v, str)]
