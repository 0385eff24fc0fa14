"""Histories hold no plaintext: a real refund through review on the dev server with SQLite.

The server here is the one ``refunds dev`` runs (``TemporalDevServer``, its SQLite file in a
temporary folder), so both what a client without the codec reads and what lies on disk can
be searched for the planted values.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import asyncpg
import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

from deploy.local.temporal_server import TemporalDevServer
from starters.client import refund_handle, start_refund
from starters.codec_server import serve_codec
from tests.starters.cli_run import TEST_KEY, TEST_KEY_ID
from tests.starters.test_demo import free_port
from tests.support.stack import running_worker
from tests.workflows.review_support import paid, reach
from tests.workflows.test_refund_paths import refund_request
from workers.codec import PayloadDecryptionError, data_converter_for, encrypted_converter
from workers.ops_settings import OpsSettings
from workers.settings import Settings, SettingsError
from workflows.models import RefundRequest, RefundResult, RefundStatus
from workflows.refund import RefundWorkflow
from workflows.review_models import ApproveDecision

HIGH = 60_000  # above REFUNDS_REVIEW_ABOVE: the refund waits for a reviewer
TEST_KEYS = ((TEST_KEY_ID, TEST_KEY),)
OLD = ("key-2024", bytes([1]) * 32)
NEW = ("key-2025", bytes([2]) * 32)


class SqliteServer:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.address = f"127.0.0.1:{free_port()}"
        self.server = TemporalDevServer(self.address, None, folder / "temporal.db")

    async def client(self, converter: DataConverter) -> Client:
        return await Client.connect(self.address, data_converter=converter)

    def files(self) -> bytes:
        """The SQLite database with its write-ahead log and shared memory, as bytes."""
        return b"".join(path.read_bytes() for path in sorted(self.folder.glob("temporal.db*")))


@pytest.fixture(scope="module")
async def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SqliteServer]:
    server = SqliteServer(tmp_path_factory.mktemp("temporal-sqlite"))
    await server.server.start()
    try:
        yield server
    finally:
        await server.server.stop()


async def raw_events(server: SqliteServer, workflow_id: str) -> list[HistoryEvent]:
    """The history as a client without the codec gets it."""
    raw = await server.client(pydantic_data_converter)
    return list((await raw.get_workflow_handle(workflow_id).fetch_history()).events)


def payload_of(events: Sequence[HistoryEvent], kind: str) -> Payload:
    """The first payload of the first event whose attributes are ``kind``."""
    for event in events:
        if event.WhichOneof("attributes") == kind:
            attributes = getattr(event, kind)
            if kind == "workflow_execution_started_event_attributes":
                return attributes.input.payloads[0]  # type: ignore[no-any-return]
            if kind == "workflow_execution_update_accepted_event_attributes":
                return attributes.accepted_request.input.args.payloads[0]  # type: ignore[no-any-return]
            if kind == "workflow_execution_completed_event_attributes":
                return attributes.result.payloads[0]  # type: ignore[no-any-return]
    raise AssertionError(f"no {kind} in the history")


STARTED = "workflow_execution_started_event_attributes"
UPDATE = "workflow_execution_update_accepted_event_attributes"
COMPLETED = "workflow_execution_completed_event_attributes"


async def decoded_by_codec_server(payload: Payload) -> dict[str, object]:
    """What ``POST /decode`` answers for one payload, as the UI would read it."""
    settings = Settings(ops=OpsSettings(encryption_keys=TEST_KEYS, codec_address="127.0.0.1:0"))
    stop = asyncio.Event()
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(serve_codec(settings, stop, started.set_result))
    try:
        url = await asyncio.wait_for(started, 10)
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                f"{url}/decode",
                content=json_format.MessageToJson(Payloads(payloads=[payload])),
                headers={"Content-Type": "application/json", "X-Namespace": "default"},
            )
    finally:
        stop.set()
        await server
    assert answer.status_code == 200, answer.text
    decoded = json_format.Parse(answer.content, Payloads()).payloads[0]
    assert decoded.metadata["encoding"] == b"json/plain"
    value: dict[str, object] = json.loads(decoded.data)
    return value


async def test_history_and_sqlite_hold_no_plaintext_and_the_codec_server_reads_them(
    sqlite_server: SqliteServer, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    planted_metadata = f"parcel-left-with-neighbour-{uuid.uuid4().hex}"
    planted_note = f"called the customer, receipt checked {uuid.uuid4().hex}"
    client = await sqlite_server.client(encrypted_converter(TEST_KEYS))
    payment = await paid(stripe_base, HIGH)
    request = refund_request(payment, metadata={"shop_note": planted_metadata})
    async with running_worker(client, ledger_db, stripe_base) as queue:
        handle = await start_refund(client, request, queue)
        await reach(handle, RefundStatus.AWAITING_REVIEW)
        await handle.execute_update(
            RefundWorkflow.approve_refund, ApproveDecision(reviewer="rita", note=planted_note)
        )
        result = await handle.result()
        view = await handle.query(RefundWorkflow.status)
    assert result.status is RefundStatus.SUCCEEDED
    assert [a.note for a in view.review.approvals] == [planted_note], "the codec decodes"

    events = await raw_events(sqlite_server, handle.id)
    history = b"".join(event.SerializeToString() for event in events)
    on_disk = sqlite_server.files()

    for planted in (planted_metadata, planted_note):
        assert planted.encode() not in history
        assert planted.encode() not in on_disk
    # The checks can see plaintext: the workflow id (not a payload) is on disk as it is.
    assert handle.id.encode() in on_disk
    for kind in (STARTED, UPDATE, COMPLETED):
        payload = payload_of(events, kind)
        assert payload.metadata["encoding"] == b"binary/encrypted", kind
        assert payload.metadata["encryption-key-id"] == TEST_KEY_ID.encode(), kind
    started = await decoded_by_codec_server(payload_of(events, STARTED))
    assert started["metadata"] == {"shop_note": planted_metadata}
    update = await decoded_by_codec_server(payload_of(events, UPDATE))
    assert update["note"] == planted_note


async def test_a_refund_started_under_the_old_key_completes_after_rotation(
    sqlite_server: SqliteServer, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    payment = await paid(stripe_base, HIGH)
    request = refund_request(payment)
    before = await sqlite_server.client(encrypted_converter([OLD]))
    async with running_worker(before, ledger_db, stripe_base) as queue:
        await reach(await start_refund(before, request, queue), RefundStatus.AWAITING_REVIEW)

    # The deploy: the new key encrypts, the old one still decrypts what is in flight.
    after = await sqlite_server.client(encrypted_converter([NEW, OLD]))
    async with running_worker(after, ledger_db, stripe_base, task_queue=queue):
        handle = refund_handle(after, request.request_id)
        await handle.execute_update(RefundWorkflow.approve_refund, ApproveDecision(reviewer="rita"))
        result = await handle.result()
    assert result.status is RefundStatus.SUCCEEDED

    events = await raw_events(sqlite_server, handle.id)
    key_ids = {
        kind: payload_of(events, kind).metadata["encryption-key-id"]
        for kind in (STARTED, UPDATE, COMPLETED)
    }
    assert key_ids == {STARTED: b"key-2024", UPDATE: b"key-2025", COMPLETED: b"key-2025"}
    converter = after.data_converter
    [started] = await converter.decode([payload_of(events, STARTED)], [RefundRequest])
    [completed] = await converter.decode([payload_of(events, COMPLETED)], [RefundResult])
    assert started == request
    assert completed == result

    # Without the new key, or with another key under its id: a clear error naming the id.
    for keys, expected in (
        ([OLD], "key id 'key-2025', which is not among this service's keys"),
        ([(NEW[0], bytes([3]) * 32)], "key id 'key-2025' failed authentication"),
    ):
        stranger = await sqlite_server.client(encrypted_converter(keys))
        with pytest.raises(PayloadDecryptionError) as refused:
            await refund_handle(stranger, request.request_id).result()
        assert expected in str(refused.value)
        for _, key in keys:
            assert base64.b64encode(key).decode() not in str(refused.value)


def test_no_keys_is_refused_unless_plaintext_is_asked_for() -> None:
    with pytest.raises(SettingsError) as refused:
        data_converter_for(Settings())
    assert "REFUNDS_ENCRYPTION_KEYS is not set" in str(refused.value)
    assert "REFUNDS_ALLOW_UNENCRYPTED=true" in str(refused.value)
    plain = data_converter_for(Settings(ops=OpsSettings(allow_unencrypted=True)))
    assert plain is pydantic_data_converter
    encrypted = data_converter_for(Settings(ops=OpsSettings(encryption_keys=TEST_KEYS)))
    assert encrypted.payload_codec is not None
