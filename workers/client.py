"""The Temporal client every process uses: same namespace, same data converter (pydantic JSON,
AES-GCM encrypted), headers through that converter's codec too (the tracing header would
otherwise be stored in plaintext), the tracing interceptor, and for long-running services the
Prometheus endpoint of the SDK's runtime."""

from __future__ import annotations

from temporalio.client import Client, HeaderCodecBehavior

from workers.codec import data_converter_for
from workers.settings import Settings
from workers.telemetry import setup_tracing, telemetry_runtime, tracing_interceptors


class TemporalUnreachable(Exception):
    """No Temporal server answers at the configured address."""


async def connect(settings: Settings, serve_metrics: bool = False) -> Client:
    """A client for ``settings``; ``serve_metrics`` (the worker, the HTTP API) first makes the
    process's runtime serve Prometheus on REFUNDS_METRICS_ADDRESS. A one-off command does not,
    so it never takes the port of a worker on the same machine."""
    converter = data_converter_for(settings)  # SettingsError when payloads would be plaintext
    setup_tracing(settings)
    if serve_metrics:
        telemetry_runtime(settings)
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=converter,
            interceptors=tracing_interceptors(),
            # Headers (trace context) encrypted like payloads; workers built on this client
            # decode and encode them the same way.
            header_codec_behavior=HeaderCodecBehavior.CODEC,
        )
    except RuntimeError as exc:
        raise TemporalUnreachable(
            f"cannot reach Temporal at {settings.temporal_address} "
            f"(TEMPORAL_ADDRESS): {exc}. Start the local stack with `refunds dev`."
        ) from exc
