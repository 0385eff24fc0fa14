"""Traces and metrics of a process: the Temporal tracing interceptor, where spans go, and the
Prometheus endpoint of the SDK's runtime.

One trace runs from the caller (CLI, HTTP API, webhook) through the workflow to each activity
and provider call: ``TracingInterceptor`` puts the span context in Temporal headers, and its
workflow spans are made outside the sandbox and never again on replay. Spans leave by OTLP
when the standard ``OTEL_EXPORTER_OTLP_*`` variables say where to, or to stderr with
``REFUNDS_TRACE_CONSOLE``; with neither no provider is set, the API's no-op tracer answers,
and no trace context is added to Temporal headers, so tracing costs next to nothing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

import temporalio.client
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.runtime import Runtime

from workers.logging_setup import install_runtime
from workers.settings import Settings

OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
WEBHOOK_REJECTED = "refunds_webhook_verification_failures_total"

_tracing_set = False


def tracing_interceptors() -> list[temporalio.client.Interceptor]:
    """For ``Client.connect(interceptors=...)``: also a worker interceptor, so every worker
    built on that client traces its workflows and activities."""
    return [TracingInterceptor()]


def tracer_provider(settings: Settings, env: Mapping[str, str]) -> TracerProvider | None:
    """The provider the settings ask for, or None when spans would go nowhere."""
    otlp = any(env.get(name, "").strip() for name in OTLP_ENDPOINT_VARIABLES)
    if not otlp and not settings.ops.trace_console:
        return None
    service = env.get("OTEL_SERVICE_NAME", "").strip() or "refunds"
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    if otlp:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if settings.ops.trace_console:
        # stderr: stdout carries commands' --json output.
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    return provider


def setup_tracing(settings: Settings) -> None:
    """Set the global tracer provider once per process (OpenTelemetry allows only one)."""
    global _tracing_set
    if _tracing_set:
        return
    _tracing_set = True
    provider = tracer_provider(settings, os.environ)
    if provider is not None:
        trace.set_tracer_provider(provider)


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
