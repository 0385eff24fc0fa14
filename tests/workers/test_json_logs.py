"""Log lines: JSON with the refund's ids and trace for a log store, plain at a terminal."""

from __future__ import annotations

import io
import json
import logging

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from workers.logging_setup import JsonLogFormatter, chosen_format, log_formatter


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def record(**extra: object) -> logging.LogRecord:
    made = logging.LogRecord(
        "temporalio.workflow", logging.WARNING, __file__, 1, "refund %s stalled", ("x",), None
    )
    made.__dict__.update(extra)
    return made


def test_a_workflow_log_line_carries_the_refund_workflow_and_trace() -> None:
    workflow_log = record(
        temporal_workflow={"workflow_id": "refund-rma-42", "workflow_type": "RefundWorkflow"}
    )
    context = SpanContext(
        trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
        span_id=0x00F067AA0BA902B7,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    with trace.use_span(NonRecordingSpan(context)):
        line = JsonLogFormatter().format(workflow_log)

    entry = json.loads(line)
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "temporalio.workflow"
    assert entry["message"] == "refund x stalled"
    assert (entry["workflow_id"], entry["refund_id"]) == ("refund-rma-42", "rma-42")
    assert entry["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert entry["span_id"] == "00f067aa0ba902b7"
    assert entry["time"].endswith("+00:00")


def test_an_activity_log_line_names_the_activity() -> None:
    entry = json.loads(
        JsonLogFormatter().format(
            record(
                temporal_activity={
                    "workflow_id": "refund-rma-7",
                    "activity_type": "reverse_at_provider",
                }
            )
        )
    )
    assert (entry["refund_id"], entry["activity"]) == ("rma-7", "reverse_at_provider")
    assert "trace_id" not in entry  # no span, no made-up trace


def test_auto_is_plain_at_a_terminal_and_json_otherwise() -> None:
    assert chosen_format("auto", Terminal()) == "plain"
    assert chosen_format("auto", io.StringIO()) == "json"
    assert chosen_format("json", Terminal()) == "json"
    plain = log_formatter("plain").format(record())
    assert "WARNING temporalio.workflow: refund x stalled" in plain
    assert not plain.startswith("{")
