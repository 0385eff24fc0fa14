"""Where orders come from when the built-in store does not have them: a commerce platform.

``REFUNDS_ORDER_SOURCE=package.module:factory`` names a factory, called once with no arguments,
that returns an ``OrderSource``: an object with ``async def fetch_order(order_id) -> Order |
None``. The order store asks it for an order it does not know, and keeps what it answers (as
source ``platform``), so a platform is asked once per order.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Protocol, runtime_checkable

from workflows.orders import Order


class OrderSourceError(ValueError):
    """REFUNDS_ORDER_SOURCE names nothing usable; the message says what and why (a ValueError:
    the commands print it as one line, like any invalid setting)."""


@runtime_checkable
class OrderSource(Protocol):
    async def fetch_order(self, order_id: str) -> Order | None:
        """The order as the platform has it, or None when it has no such order."""
        ...


def load_order_source(spec: str) -> OrderSource:
    """Import ``package.module:factory``, call the factory and check what it made."""
    module_name, sep, attribute = spec.strip().partition(":")
    if not sep or not module_name or not attribute:
        raise OrderSourceError(f"REFUNDS_ORDER_SOURCE must be package.module:factory, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise OrderSourceError(
            f"REFUNDS_ORDER_SOURCE {spec!r}: no module {exc.name or module_name!r} "
            "(is the package installed in this environment?)"
        ) from exc
    factory = module
    for part in attribute.split("."):
        try:
            factory = getattr(factory, part)
        except AttributeError:
            raise OrderSourceError(
                f"REFUNDS_ORDER_SOURCE {spec!r}: module {module_name} has no {attribute!r}"
            ) from None
    if not callable(factory):
        raise OrderSourceError(
            f"REFUNDS_ORDER_SOURCE {spec!r}: {attribute} is a {type(factory).__name__}, not "
            "a factory to call"
        )
    try:
        inspect.signature(factory).bind()
    except TypeError as exc:
        raise OrderSourceError(
            f"REFUNDS_ORDER_SOURCE {spec!r}: {attribute} must be callable with no arguments ({exc})"
        ) from None
    except ValueError:  # no signature to read (some builtins): calling it will tell
        pass
    try:
        source = factory()
    except Exception as exc:
        raise OrderSourceError(
            f"REFUNDS_ORDER_SOURCE {spec!r}: {attribute}() failed: {type(exc).__name__}: {exc}"
        ) from exc
    fetch = getattr(source, "fetch_order", None)
    if not callable(fetch) or not inspect.iscoroutinefunction(fetch):
        raise OrderSourceError(
            f"REFUNDS_ORDER_SOURCE {spec!r}: {attribute}() made a {type(source).__name__}, "
            "which has no `async def fetch_order(self, order_id: str) -> Order | None`"
        )
    assert isinstance(source, OrderSource)
    return source
