"""What every command shares: settings from the environment, clear one-line errors, output."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import asyncpg
import click
from pydantic import BaseModel, ValidationError
from temporalio.client import WorkflowFailureError
from temporalio.service import RPCError

from activities.errors import RefundError
from deploy.local.stack import RunningStack
from deploy.local.temporal_server import TemporalServerError
from deploy.sandboxes.stripe_shop import CheckoutFailed
from workers.client import TemporalUnreachable
from workers.settings import Settings, SettingsError, settings_for_stack

P = ParamSpec("P")
R = TypeVar("R")


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def pointed_at(settings: Settings, stack: RunningStack) -> Settings:
    """The settings every client of a running local stack uses."""
    return settings_for_stack(
        settings,
        stack.temporal_address,
        stack.database_url,
        stack.stripe_api_base,
        stack.paypal_api_base,
        stack.adyen_checkout_base,
        stack.paypal_webhook_certificate,
    )


def describe_validation_error(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "body"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Known failures become one clear line (click prints it, exit 1), not a traceback."""
    try:
        yield
    except (
        SettingsError,
        TemporalUnreachable,
        TemporalServerError,
        RefundError,
        CheckoutFailed,
    ) as exc:
        raise click.ClickException(str(exc)) from exc
    except ValidationError as exc:
        raise click.ClickException(describe_validation_error(exc)) from exc
    except WorkflowFailureError as exc:
        raise click.ClickException(f"the refund workflow failed: {exc.cause or exc}") from exc
    except RPCError as exc:
        raise click.ClickException(f"Temporal: {exc.message}") from exc
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
    except ValueError as exc:  # e.g. a malformed URL or port in the environment
        raise click.ClickException(str(exc)) from exc


def run_async(func: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, R]:
    """Run an async command with ``one_line_errors``."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with one_line_errors():
            return asyncio.run(func(*args, **kwargs))

    return wrapper


def emit(value: BaseModel | dict[str, Any], as_json: bool, text: str) -> None:
    if as_json:
        data = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        click.echo(text)
