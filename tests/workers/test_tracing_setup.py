"""Where spans go: OTLP when the standard variables say where, the console on request, and
nowhere (no provider at all, so the API's no-op tracer) otherwise; what of them leaves (no
baggage, no error texts), and that a dead collector does not hold a command's exit."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Mapping

import pytest
from opentelemetry import baggage, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.trace import Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from temporalio.contrib.opentelemetry import TracingInterceptor

from workers import telemetry
from workers.ops_settings import OpsSettings
from workers.settings import Settings
from workers.telemetry import (
    OTLP_ENDPOINT_VARIABLES,
    OTLP_TIMEOUT_SECONDS,
    OTLP_TIMEOUT_VARIABLES,
    otlp_timeout,
    setup_tracing,
    tracer_provider,
    tracing_interceptors,
)


def test_without_an_endpoint_or_console_there_is_no_provider() -> None:
    assert tracer_provider(Settings(), {"OTEL_SERVICE_NAME": "refunds-worker"}) is None


def test_an_otlp_endpoint_makes_a_provider_named_by_the_service() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SERVICE_NAME": "api"}
    provider = tracer_provider(Settings(), env)
    assert provider is not None
    assert provider.resource.attributes["service.name"] == "api"
    provider.shutdown()


def test_the_console_flag_alone_makes_a_provider_named_refunds() -> None:
    settings = Settings(ops=OpsSettings(trace_console=True))
    provider = tracer_provider(settings, {})
    assert provider is not None
    assert provider.resource.attributes["service.name"] == "refunds"
    provider.shutdown()


# --- What leaves the process, and how long leaving may take ----------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # nothing listens there now: connections are refused


def test_a_dead_collector_holds_the_shutdown_a_short_while_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (*OTLP_TIMEOUT_VARIABLES, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    began = time.monotonic()
    provider = tracer_provider(Settings(), os.environ)
    assert provider is not None
    with provider.get_tracer(__name__).start_as_current_span("one-off command"):
        pass
    provider.shutdown()
    # A correctness bound (the exporter's own default retried for ~8 s), not a benchmark.
    assert time.monotonic() - began < 5


def test_the_otlp_timeout_is_short_unless_the_standard_variables_say_otherwise() -> None:
    assert otlp_timeout({}) == OTLP_TIMEOUT_SECONDS == 2.0
    assert otlp_timeout({"OTEL_EXPORTER_OTLP_TIMEOUT": "7"}) == 7.0
    both = {"OTEL_EXPORTER_OTLP_TIMEOUT": "7", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "3.5"}
    assert otlp_timeout(both) == 3.5


def test_otel_sdk_disabled_means_no_provider_even_with_an_endpoint() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}
    settings = Settings(ops=OpsSettings(trace_console=True))
    assert tracer_provider(settings, env) is None


def test_exported_spans_carry_no_exception_events_nor_status_descriptions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    provider = tracer_provider(Settings(ops=OpsSettings(trace_console=True)), {})
    assert provider is not None
    with provider.get_tracer(__name__).start_as_current_span("review") as span:
        span.record_exception(ValueError("refused by reviewer bob@shop.example"))
        span.set_status(Status(StatusCode.ERROR, "ValueError: refused by bob@shop.example"))
    provider.shutdown()
    printed = json.loads(capsys.readouterr().err)
    assert "bob@shop.example" not in json.dumps(printed)
    assert printed["events"] == []
    assert printed["status"] == {"status_code": "ERROR"}
    assert printed["attributes"]["error.type"] == "ValueError"


def test_the_process_propagates_the_trace_context_only(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTLP_ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(telemetry, "_tracing_set", True)  # even when already set up
    before = propagate.get_global_textmap()
    propagate.set_global_textmap(
        CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    )
    try:
        setup_tracing(Settings())
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=baggage.set_baggage("user.email", "a@example.com"))
    finally:
        propagate.set_global_textmap(before)
    assert carrier == {}


def test_the_interceptor_puts_no_baggage_in_temporal_headers() -> None:
    interceptor = tracing_interceptors()[0]
    assert isinstance(interceptor, TracingInterceptor)
    span = SdkTracerProvider().get_tracer(__name__).start_span("caller")
    with_baggage = baggage.set_baggage("user.email", "a@example.com")
    carrier: dict[str, str] = {}
    interceptor.text_map_propagator.inject(carrier, trace.set_span_in_context(span, with_baggage))
    assert set(carrier) == {"traceparent"}


def test_a_failed_setup_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def failing_once(settings: Settings, env: Mapping[str, str]) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("exporter failed to load")

    monkeypatch.setattr(telemetry, "_tracing_set", False)
    monkeypatch.setattr(telemetry, "tracer_provider", failing_once)
    with pytest.raises(RuntimeError):
        setup_tracing(Settings())
    setup_tracing(Settings())
    assert len(calls) == 2
    assert telemetry._tracing_set
