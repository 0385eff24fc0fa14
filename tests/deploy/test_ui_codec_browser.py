"""The Temporal UI, in a real headless Chromium, shows a decoded input through our codec server.

The dev server's UI gets ``--ui-codec-endpoint`` pointed at ``serve_codec``; the browser
fetches ``/decode`` cross-origin (CORS preflight included). Without Playwright or Chromium
the test is skipped and says why. The screenshot is kept in the pytest tmp dir and in
``test-artifacts/`` at the repository root (a folder that ignores itself in git).
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client

from deploy.local.temporal_server import TemporalDevServer
from starters.client import start_refund
from starters.codec_server import serve_codec
from tests.starters.cli_run import TEST_KEY, TEST_KEY_ID
from tests.starters.test_demo import free_port
from tests.workflows.test_refund_paths import refund_request
from workers.codec import encrypted_converter
from workers.ops_settings import OpsSettings
from workers.settings import Settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TEST_KEYS = ((TEST_KEY_ID, TEST_KEY),)


def no_browser() -> str | None:
    """Why the browser cannot run here, or None when it can."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "Python Playwright is not installed (pip install playwright)"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    return None


def keep_artifact(source: Path) -> Path:
    """Copy into ``test-artifacts/``, which carries its own ``.gitignore`` of ``*``."""
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n")
    return Path(shutil.copy(source, ARTIFACTS / source.name))


@pytest.fixture
async def codec_url(tmp_path: Path) -> AsyncIterator[tuple[str, int]]:
    """A codec server on a free port that lets the UI's origin call it; yields its URL and
    the UI port it expects."""
    ui_port = free_port()
    settings = Settings(
        ops=OpsSettings(
            encryption_keys=TEST_KEYS,
            codec_address="127.0.0.1:0",
            codec_cors_origins=(f"http://127.0.0.1:{ui_port}",),
        )
    )
    stop = asyncio.Event()
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(serve_codec(settings, stop, started.set_result))
    try:
        yield await asyncio.wait_for(started, 10), ui_port
    finally:
        stop.set()
        await server


async def test_the_ui_shows_a_decoded_workflow_input(
    codec_url: tuple[str, int], tmp_path: Path
) -> None:
    if why := no_browser():
        pytest.skip(why)
    from playwright.async_api import async_playwright

    url, ui_port = codec_url
    temporal = TemporalDevServer(
        f"127.0.0.1:{free_port()}", ui_port, tmp_path / "temporal.db", ui_codec_endpoint=url
    )
    await temporal.start()
    try:
        client = await Client.connect(
            temporal.address, data_converter=encrypted_converter(TEST_KEYS)
        )
        planted = f"box-crushed-{uuid.uuid4().hex[:12]}"
        request = refund_request("pi_ui_codec", metadata={"shop_note": planted})
        # No worker: the UI shows the input of a refund that has only been started.
        handle = await start_refund(client, request, "no-worker-here")
        page_url = f"{temporal.ui_url}/namespaces/default/workflows/{handle.id}"
        screenshot = tmp_path / "temporal-ui-decoded-input.png"
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1400, "height": 1000})
                await page.goto(page_url)
                shown = page.get_by_text(planted).first
                try:
                    await shown.wait_for(timeout=45_000)
                finally:
                    await page.screenshot(path=str(screenshot), full_page=True)
                    kept = keep_artifact(screenshot)
                text = await page.inner_text("body")
            finally:
                await browser.close()
    finally:
        await temporal.stop()

    assert planted in text, f"the decoded input is not on the page; see {kept}"
    assert "binary/encrypted" not in text
    print(f"screenshot: {screenshot} (kept as {kept})")
