"""Process logging: one line per event on stderr; business refusals without tracebacks.

The SDK logs every failed activity attempt with its traceback. Our activities fail only with
``ApplicationError``s from the error taxonomy (a refusal, a provider outage that will be
retried), which are expected, so they are logged as one line (refusals only at INFO); any
other exception is a bug and keeps its traceback. The SDK core (Rust) would print its own logs
to stdout, where they would corrupt ``--json`` output, so they go to Python logging instead.
"""

from __future__ import annotations

import logging
import os
import warnings

from temporalio.exceptions import ApplicationError
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)


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


def configure_logging() -> None:
    level = os.environ.get("REFUNDS_LOG_LEVEL", "WARNING").upper()
    known = level in logging.getLevelNamesMapping()
    logging.basicConfig(
        level=level if known else "WARNING",
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not known:
        logging.getLogger("refunds").warning(
            "REFUNDS_LOG_LEVEL=%s is not a log level (DEBUG, INFO, WARNING, ERROR); using WARNING",
            level,
        )
    logging.getLogger("temporalio.activity").addFilter(TaxonomyFailureFilter())
    # paypalrestsdk logs whole request headers at DEBUG outside live mode: the client secret
    # (Basic auth of the token call) and bearer tokens. Never below WARNING, whatever the level.
    logging.getLogger("paypalrestsdk").setLevel(logging.WARNING)
    core_logs = LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
    )
    Runtime.set_default(
        Runtime(telemetry=TelemetryConfig(logging=core_logs)), error_if_already_set=False
    )
    # pgserver asks platformdirs for a runtime folder it never uses; the warning is noise.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
