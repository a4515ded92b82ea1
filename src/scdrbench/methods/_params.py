"""Building blocks of a method's parameter declaration (``PARAMS``).

Each method module declares its parameters once, as JSON-schema properties built with these
helpers; ``scdrbench.common.config`` turns every module's ``PARAMS`` into the schema's
``$defs/params_<algorithm>`` (strict: an unknown or misspelled parameter is a ConfigError naming
the key), and ``tests/test_registry.py`` checks them against the module's ``embed`` signature.
A parameter without a default is optional: absent means the method's own "auto" rule.
"""

from __future__ import annotations

from typing import Any


def _schema(kind: str | None, default: Any, description: str, **bounds) -> dict:
    out: dict[str, Any] = {"type": kind} if kind else {}
    out.update({k: v for k, v in bounds.items() if v is not None})
    if default is not None:
        out["default"] = default
    if description:
        out["description"] = description
    return out


def number(default=None, *, minimum=None, gt=None, maximum=None, lt=None, description=""):
    """A real number; ``gt``/``lt`` are exclusive bounds."""
    return _schema(
        "number",
        default,
        description,
        minimum=minimum,
        exclusiveMinimum=gt,
        maximum=maximum,
        exclusiveMaximum=lt,
    )


def integer(default=None, *, minimum=None, maximum=None, description=""):
    """An integer within ``[minimum, maximum]``."""
    return _schema("integer", default, description, minimum=minimum, maximum=maximum)


def boolean(default: bool, description: str = "") -> dict:
    """True or false."""
    return _schema("boolean", default, description)


def string(default=None, description: str = "") -> dict:
    """Any string."""
    return _schema("string", default, description)


def choice(values, default=None, description: str = "") -> dict:
    """One of ``values``."""
    return _schema(None, default, description, enum=list(values))


def integers(
    default=None, *, minimum=1, min_items=None, max_items=None, unique=None, description=""
):
    """A list of integers (layer widths, component numbers)."""
    return _schema(
        "array",
        default,
        description,
        items={"type": "integer", "minimum": minimum},
        minItems=min_items,
        maxItems=max_items,
        uniqueItems=unique,
    )


def auto_or_integer(minimum: int, description: str = "") -> dict:
    """``'auto'`` (the default) or an integer of at least ``minimum``."""
    return {
        "default": "auto",
        "oneOf": [{"const": "auto"}, {"type": "integer", "minimum": minimum}],
        "description": description,
    }


ACTIVATIONS = ("elu", "relu", "selu", "tanh", "sigmoid", "gelu", "softplus")
ACTIVATION = choice(ACTIVATIONS, "elu", "hidden-layer activation")
