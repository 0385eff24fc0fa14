"""Process logging: one line per event on stderr; business refusals without tracebacks.

The SDK logs every failed activity attempt with its traceback. A refusal (unknown payment,
over-refund) is an expected business outcome that ends in a REJECTED refund, so it is logged
as one line; unexpected failures keep their traceback.
"""

from __future__ import annotations

import logging
import os
import warnings

from temporalio.exceptions import ApplicationError


class BusinessFailureFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ApplicationError) and error.non_retryable:
            record.msg = f"{record.getMessage()}: {error.type}: {error.message}"
            record.args = None
            record.exc_info = None
        return True


def configure_logging() -> None:
    level = os.environ.get("REFUNDS_LOG_LEVEL", "WARNING").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("temporalio.activity").addFilter(BusinessFailureFilter())
    # pgserver asks platformdirs for a runtime folder it never uses; the warning is noise.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
