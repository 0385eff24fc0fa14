"""The local stack's own secrets: made once, kept, never silently replaced."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import asdict
from pathlib import Path

import pytest

from deploy.local import secrets as secrets_module
from deploy.local.secrets import LocalSecrets, LocalSecretsError

OLDER_FILE = {  # from before PayPal, Adyen and payload encryption
    "stripe_webhook_secret": "whsec_kept",
    "shop_webhook_secret": "shop_kept",
    "api_tokens": "tok:admin:admin@local",
}


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_state_folder_gets_a_0600_file_that_the_next_start_reads_back(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"

    made = LocalSecrets.load_or_create(state)
    again = LocalSecrets.load_or_create(state)

    assert again == made
    assert made.encryption_key and made.paypal_webhook_id and made.adyen_hmac_key
    assert mode_of(state / "secrets.json") == 0o600
    assert sorted(p.name for p in state.iterdir()) == ["secrets.json"], "no temporary left"


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "",
        "[1, 2]",
        json.dumps({**OLDER_FILE, "api_tokens": 5}),
        json.dumps({"shop_webhook_secret": "x", "api_tokens": "y"}),
    ],
)
def test_a_file_that_is_not_the_secrets_is_an_error_and_stays_as_it_was(
    tmp_path: Path, content: str
) -> None:
    path = tmp_path / "secrets.json"
    path.write_text(content)

    with pytest.raises(LocalSecretsError) as raised:
        LocalSecrets.load_or_create(tmp_path)

    message = str(raised.value)
    assert str(path) in message
    assert "is not readable as the local stack's secrets" in message
    assert "fix it or move it away" in message
    assert "encryption key" in message
    assert path.read_text() == content


def test_an_older_file_keeps_its_secrets_and_gains_the_newer_ones(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps(OLDER_FILE))
    path.chmod(0o644)

    made = LocalSecrets.load_or_create(tmp_path)

    assert {k: v for k, v in asdict(made).items() if k in OLDER_FILE} == OLDER_FILE
    assert made.paypal_webhook_id and made.adyen_hmac_key and made.encryption_key
    assert json.loads(path.read_text()) == asdict(made)
    assert mode_of(path) == 0o600
    assert LocalSecrets.load_or_create(tmp_path) == made


def test_unknown_fields_are_ignored_and_kept(tmp_path: Path) -> None:
    complete = asdict(LocalSecrets.load_or_create(tmp_path))
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps({**complete, "from_a_newer_version": "x"}))

    kept = LocalSecrets.load_or_create(tmp_path)

    assert asdict(kept) == complete
    assert json.loads(path.read_text())["from_a_newer_version"] == "x"


def test_unknown_fields_survive_when_newer_fields_are_added(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps({**OLDER_FILE, "from_a_newer_version": "x"}))

    made = LocalSecrets.load_or_create(tmp_path)

    stored = json.loads(path.read_text())
    assert stored["from_a_newer_version"] == "x"
    assert stored["encryption_key"] == made.encryption_key
    assert made.stripe_webhook_secret == "whsec_kept"


def test_an_existing_file_left_readable_by_others_is_made_0600(tmp_path: Path) -> None:
    LocalSecrets.load_or_create(tmp_path)
    path = tmp_path / "secrets.json"
    path.chmod(0o644)

    LocalSecrets.load_or_create(tmp_path)

    assert mode_of(path) == 0o600


def test_repr_shows_no_secret(tmp_path: Path) -> None:
    made = LocalSecrets.load_or_create(tmp_path)

    shown = repr(made)

    for name, value in asdict(made).items():
        assert value not in shown, name
        for part in value.replace(":", ",").split(","):  # each token and key on its own
            if len(part) >= 8:
                assert part not in shown, name


def test_the_secrets_are_never_in_a_file_others_can_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Written to a 0600 temporary in the same folder, then renamed over the file."""
    renamed: list[tuple[Path, int]] = []
    real_replace = os.replace

    def replace(source: str | Path, target: str | Path) -> None:
        renamed.append((Path(source).parent, mode_of(Path(source))))
        real_replace(source, target)

    monkeypatch.setattr(secrets_module.os, "replace", replace)

    LocalSecrets.load_or_create(tmp_path)

    assert renamed == [(tmp_path, 0o600)]
