"""Process logging: one line per event on stderr; business refusals without tracebacks.

The SDK logs every failed activity attempt with its traceback. Our activities fail only with
``ApplicationError``s from the error taxonomy (a refusal, a provider outage that will be
retried), which are expected, so they are logged as one line (refusals only at INFO); any
other exception is a bug and keeps its traceback. The SDK core (Rust) would print its own logs
to stdout, where they would corrupt ``--json`` output, so they go to Python logging instead.

Lines are JSON (``REFUNDS_LOG_FORMAT=json``, or ``auto`` when stderr is not a terminal) so a
log store can find every line of one refund by ``refund_id``, ``workflow_id`` or ``trace_id``;
a person at a terminal reads plain lines. Workflow logs go through ``workflow.logger``, which
the SDK silences while a workflow replays its history, so a line is never repeated.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from datetime import UTC, datetime
from typing import Any, TextIO

import temporalio.activity
import temporalio.workflow
from opentelemetry import trace
from temporalio.exceptions import ApplicationError
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from activities.provider_metrics import PROVIDER_CALL_BUCKETS
from workers.ops_settings import OpsSettings, OpsSettingsError
from workflows.metrics import REVIEW_WAIT_BUCKETS

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REFUND_WORKFLOW_PREFIX = "refund-"  # RefundWorkflow ids are refund-{request_id}


class TaxonomyFailureFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ApplicationError):
            if error.non_retryable and not logging.getLogger(record.name).isEnabledFor(
                logging.INFO
            ):
                return False  # a refusal is the refund's outcome, not a warning
            record.msg = f"{record.getMessage()}: {error.type}: {error.message}"
            record.args = None
            record.exc_info = None
        return True


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and what is known of the refund.

    ``workflow.logger`` and ``activity.logger`` put their context in ``temporal_workflow`` /
    ``temporal_activity`` on the record; the trace comes from the current OpenTelemetry span.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(refund_context(record))
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def refund_context(record: logging.LogRecord) -> dict[str, str]:
    """``workflow_id``, ``refund_id`` and ``activity`` from the SDK's extras (or the caller's)."""
    found: dict[str, str] = {}
    temporal = record.__dict__.get("temporal_activity") or record.__dict__.get("temporal_workflow")
    if isinstance(temporal, dict):
        if temporal.get("workflow_id"):
            found["workflow_id"] = str(temporal["workflow_id"])
        if temporal.get("activity_type"):
            found["activity"] = str(temporal["activity_type"])
    workflow_id = record.__dict__.get("workflow_id") or found.get("workflow_id")
    if isinstance(workflow_id, str):
        found["workflow_id"] = workflow_id
        if workflow_id.startswith(REFUND_WORKFLOW_PREFIX):
            found["refund_id"] = workflow_id.removeprefix(REFUND_WORKFLOW_PREFIX)
    if isinstance(record.__dict__.get("refund_id"), str):
        found["refund_id"] = record.__dict__["refund_id"]
    return found


def chosen_format(setting: str, stream: TextIO) -> str:
    """``json`` or ``plain``: ``auto`` is plain for a person at a terminal, JSON otherwise."""
    if setting != "auto":
        return setting
    return "plain" if stream.isatty() else "json"


def log_formatter(log_format: str) -> logging.Formatter:
    return JsonLogFormatter() if log_format == "json" else logging.Formatter(PLAIN_FORMAT)


def configure_logging() -> None:
    level = os.environ.get("REFUNDS_LOG_LEVEL", "WARNING").upper()
    known = level in logging.getLevelNamesMapping()
    try:
        setting, problem = OpsSettings.from_env(os.environ).log_format, None
    except OpsSettingsError as exc:
        setting, problem = "auto", exc
    handler = logging.StreamHandler(sys.stderr)
    chosen = chosen_format(setting, sys.stderr)
    handler.setFormatter(log_formatter(chosen))
    if chosen == "json":
        # The JSON line has workflow_id, activity and attempt as fields of their own; the SDK
        # would also append them to every message as a dict's repr.
        temporalio.workflow.logger.workflow_info_on_message = False
        temporalio.activity.logger.activity_info_on_message = False
    logging.basicConfig(level=level if known else "WARNING", handlers=[handler])
    log = logging.getLogger("refunds")
    if not known:
        log.warning(
            "REFUNDS_LOG_LEVEL=%s is not a log level (DEBUG, INFO, WARNING, ERROR); using WARNING",
            level,
        )
    if problem is not None and "REFUNDS_LOG_FORMAT" in str(problem):
        # Other operations settings are reported by the command that reads them.
        log.warning("%s; using auto", problem)
    logging.getLogger("temporalio.activity").addFilter(TaxonomyFailureFilter())
    # paypalrestsdk logs whole request headers at DEBUG outside live mode: the client secret
    # (Basic auth of the token call) and bearer tokens. Never below WARNING, whatever the level.
    logging.getLogger("paypalrestsdk").setLevel(logging.WARNING)
    install_runtime()
    # pgserver asks platformdirs for a runtime folder it never uses; the warning is noise.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


_installed: tuple[str | None, Runtime] | None = None


def install_runtime(metrics_address: str | None = None) -> Runtime:
    """Set the process's default Temporal ``Runtime``: core logs to Python logging, and the
    SDK's metrics on a Prometheus endpoint at ``metrics_address`` when given.

    Every client connected afterwards uses it (a client keeps the runtime it connected with,
    so call this before connecting). Called again with no address or the same one, it keeps
    the runtime it set: the worker and the HTTP API of ``refunds dev`` share one endpoint.
    """
    global _installed
    if _installed is not None and metrics_address in (None, _installed[0]):
        return _installed[1]
    runtime = telemetry_runtime_for(metrics_address)
    Runtime.set_default(runtime, error_if_already_set=False)
    _installed = (metrics_address, runtime)
    return runtime


def telemetry_runtime_for(metrics_address: str | None) -> Runtime:
    """A runtime forwarding core logs to Python logging, with Prometheus when an address is
    given. OSError naming REFUNDS_METRICS_ADDRESS when the port cannot be bound."""
    core_logs = LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
    )
    metrics = None
    if metrics_address is not None:
        metrics = PrometheusConfig(
            bind_address=metrics_address,
            histogram_bucket_overrides={**REVIEW_WAIT_BUCKETS, **PROVIDER_CALL_BUCKETS},
        )
    try:
        return Runtime(telemetry=TelemetryConfig(logging=core_logs, metrics=metrics))
    except ValueError as exc:  # the core says "Failed starting Prometheus exporter: ..."
        raise OSError(
            f"cannot serve metrics on {metrics_address} (REFUNDS_METRICS_ADDRESS): {exc}"
        ) from exc
