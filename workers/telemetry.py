"""Traces and metrics of a process: the Temporal tracing interceptor, where spans go, and the
Prometheus endpoint of the SDK's runtime.

One trace runs from the caller (CLI, HTTP API, webhook) through the workflow to each activity
and provider call: ``TracingInterceptor`` puts the span context in Temporal headers, and its
workflow spans are made outside the sandbox and never again on replay. Spans leave by OTLP
when the standard ``OTEL_EXPORTER_OTLP_*`` variables say where to, or to stderr with
``REFUNDS_TRACE_CONSOLE``; with neither (or with ``OTEL_SDK_DISABLED=true``) no provider is
set, the API's no-op tracer answers, and no trace context is added to Temporal headers, so
tracing costs next to nothing.

What leaves the process:

- Only the W3C trace context (``traceparent``/``tracestate``) is propagated, never
  ``baggage``: the process's global propagator and the interceptor's are TraceContext only,
  and the HTTP API reads only those two headers of a request. The Temporal header carrying it
  goes through the payload codec like every payload (``workers.client.connect``), so it is
  encrypted in histories.
- Spans reach an exporter through ``PrivateSpans``: no ``exception`` events (messages and
  stack traces may quote providers' answers or reviewers) and no status descriptions; the
  status code and an ``error.type`` attribute (the exception's class name) stay.
- The OTLP exporter gives up on a request after ``OTLP_TIMEOUT_SECONDS`` unless
  ``OTEL_EXPORTER_OTLP_TIMEOUT``/``OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`` say otherwise, and the
  flush at exit is bounded, so a dead collector cannot hold a one-off command for long.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Mapping

import temporalio.client
import temporalio.worker
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace import Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from temporalio.contrib.opentelemetry import TracingInterceptor, TracingWorkflowInboundInterceptor
from temporalio.runtime import Runtime

from workers.logging_setup import install_runtime
from workers.settings import Settings

OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
OTLP_TIMEOUT_VARIABLES = ("OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
OTLP_TIMEOUT_SECONDS = 2.0
WEBHOOK_REJECTED = "refunds_webhook_verification_failures_total"
ERROR_TYPE = "error.type"

# W3C trace context only: baggage is free-form (a caller's ``user.email=...``) and would ride
# along into Temporal headers and every downstream request.
TRACE_CONTEXT_ONLY: TextMapPropagator = TraceContextTextMapPropagator()

_tracing_set = False


class _TraceContextWorkflowInterceptor(TracingWorkflowInboundInterceptor):
    def __init__(self, next: temporalio.worker.WorkflowInboundInterceptor) -> None:
        super().__init__(next)
        self.text_map_propagator = TRACE_CONTEXT_ONLY


class _TraceContextInterceptor(TracingInterceptor):
    """``TracingInterceptor`` whose headers carry the trace context only (its default
    propagator adds W3C baggage), in clients, activities and workflows alike."""

    def __init__(self) -> None:
        super().__init__()
        self.text_map_propagator = TRACE_CONTEXT_ONLY

    def workflow_interceptor_class(
        self, input: temporalio.worker.WorkflowInterceptorClassInput
    ) -> type[TracingWorkflowInboundInterceptor]:
        super().workflow_interceptor_class(input)  # registers the span extern
        return _TraceContextWorkflowInterceptor


def tracing_interceptors() -> list[temporalio.client.Interceptor]:
    """For ``Client.connect(interceptors=...)``: also a worker interceptor, so every worker
    built on that client traces its workflows and activities."""
    return [_TraceContextInterceptor()]


_EXCEPTION_TYPE = re.compile(r"^([A-Za-z_][\w.]*):")


class PrivateSpans(SpanProcessor):
    """Hands ``processor`` each ended span without ``exception`` events and without a status
    description (both may quote a provider's answer or a reviewer), keeping the status code
    and adding ``error.type``. Its shutdown waits ``shutdown_seconds`` at most."""

    def __init__(self, processor: SpanProcessor, shutdown_seconds: float = 5.0) -> None:
        self.processor = processor
        self.shutdown_seconds = shutdown_seconds

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.processor.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        self.processor.on_end(private_copy(span))

    def shutdown(self) -> None:
        # A thread of its own, so a collector that never answers cannot hold the exit.
        done = threading.Thread(target=self.processor.shutdown, name="span-shutdown", daemon=True)
        done.start()
        done.join(self.shutdown_seconds)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.processor.force_flush(timeout_millis)


def private_copy(span: ReadableSpan) -> ReadableSpan:
    """``span`` without exception events and status description; ``error.type`` added."""
    attributes = dict(span.attributes or {})
    events = []
    error_type: str | None = None
    for event in span.events:
        if event.name == "exception":
            error_type = error_type or str((event.attributes or {}).get("exception.type", ""))
        else:
            events.append(event)
    if span.status.status_code is StatusCode.ERROR and not error_type:
        found = _EXCEPTION_TYPE.match(span.status.description or "")
        error_type = found.group(1) if found else "_OTHER"
    if error_type and span.status.status_code is StatusCode.ERROR:
        attributes.setdefault(ERROR_TYPE, error_type)
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=events,
        links=span.links,
        kind=span.kind,
        status=Status(span.status.status_code),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def otlp_timeout(env: Mapping[str, str]) -> float:
    """Seconds an OTLP export may take: ``OTEL_EXPORTER_OTLP_TRACES_TIMEOUT``, else
    ``OTEL_EXPORTER_OTLP_TIMEOUT`` (seconds, as the Python exporter reads them), else
    ``OTLP_TIMEOUT_SECONDS``, far below the exporter's own 10 s with retries."""
    for name in reversed(OTLP_TIMEOUT_VARIABLES):
        raw = env.get(name, "").strip()
        if raw:
            try:
                seconds = float(raw)
            except ValueError:
                continue
            if seconds > 0:
                return seconds
    return OTLP_TIMEOUT_SECONDS


def tracer_provider(settings: Settings, env: Mapping[str, str]) -> TracerProvider | None:
    """The provider the settings ask for, or None when spans would go nowhere (or
    ``OTEL_SDK_DISABLED=true``). Every exporter sits behind ``PrivateSpans``."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    otlp = any(env.get(name, "").strip() for name in OTLP_ENDPOINT_VARIABLES)
    if not otlp and not settings.ops.trace_console:
        return None
    service = env.get("OTEL_SERVICE_NAME", "").strip() or "refunds"
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    if otlp:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        timeout = otlp_timeout(env)
        exporter = OTLPSpanExporter(timeout=timeout)
        # At exit: one export of what is left, then give up.
        provider.add_span_processor(PrivateSpans(BatchSpanProcessor(exporter), timeout + 1.0))
    if settings.ops.trace_console:
        # stderr: stdout carries commands' --json output.
        console = BatchSpanProcessor(ConsoleSpanExporter(out=sys.stderr))
        provider.add_span_processor(PrivateSpans(console))
    return provider


def setup_tracing(settings: Settings) -> None:
    """Set the global tracer provider once per process (OpenTelemetry allows only one), and
    always the global propagator to W3C trace context only (no baggage)."""
    global _tracing_set
    propagate.set_global_textmap(TRACE_CONTEXT_ONLY)
    if _tracing_set:
        return
    provider = tracer_provider(settings, os.environ)
    if provider is not None:
        trace.set_tracer_provider(provider)
    _tracing_set = True


def telemetry_runtime(settings: Settings) -> Runtime | None:
    """Make the default runtime serve Prometheus on ``REFUNDS_METRICS_ADDRESS`` (the SDK's
    ``temporal_`` metrics and the service's ``refunds_`` ones); None when that is ``off``.

    Call before connecting a client. Idempotent, so a worker and the HTTP API in one process
    (``refunds dev``) share one endpoint. OSError naming the variable if the port is taken.
    """
    if settings.ops.metrics_address is None:
        return None
    return install_runtime(settings.ops.metrics_address)


def webhook_rejected(provider: str, runtime: Runtime | None = None) -> None:
    """Count a webhook whose signature did not verify (probing, or a rotated secret)."""
    meter = (runtime or Runtime.default()).metric_meter
    meter.create_counter(
        WEBHOOK_REJECTED, "Webhooks refused because their signature did not verify", "{webhook}"
    ).add(1, {"provider": provider})
