"""What every command shares: settings from the environment, clear one-line errors, output."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import asyncpg
import click
from pydantic import BaseModel, ValidationError
from temporalio.service import RPCError

from activities.errors import RefundError
from deploy.sandboxes.stripe_shop import CheckoutFailed
from workers.client import TemporalUnreachable
from workers.settings import Settings, SettingsError

P = ParamSpec("P")
R = TypeVar("R")


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def describe_validation_error(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "body"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)


def run_async(func: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, R]:
    """Run an async command; known failures become one clear line, not a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return asyncio.run(func(*args, **kwargs))
        except (SettingsError, TemporalUnreachable, RefundError, CheckoutFailed) as exc:
            raise click.ClickException(str(exc)) from exc
        except ValidationError as exc:
            raise click.ClickException(describe_validation_error(exc)) from exc
        except RPCError as exc:
            raise click.ClickException(f"Temporal: {exc.message}") from exc
        except (OSError, asyncpg.PostgresError) as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc

    return wrapper


def emit(value: BaseModel | dict[str, Any], as_json: bool, text: str) -> None:
    if as_json:
        data = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        click.echo(text)
