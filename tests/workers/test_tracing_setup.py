"""Where spans go: OTLP when the standard variables say where, the console on request, and
nowhere (no provider at all, so the API's no-op tracer) otherwise."""

from __future__ import annotations

from workers.ops_settings import OpsSettings
from workers.settings import Settings
from workers.telemetry import tracer_provider


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
