"""EncryptionCodec on its own: what it refuses, and that it never wraps a payload twice."""

from __future__ import annotations

import pytest
from temporalio.api.common.v1 import Payload

from tests.starters.cli_run import TEST_KEY, TEST_KEY_ID
from workers import codec as codec_module
from workers.codec import ENCODING, KEY_ID_METADATA, EncryptionCodec, PayloadDecryptionError

OTHER_KEY_ID = "rotated-out-2024"
OTHER_KEY = bytes([0x17]) * 32


def plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'"{text}"'.encode())


def sealed(data: bytes, key_id: str = TEST_KEY_ID) -> Payload:
    return Payload(metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()}, data=data)


def test_a_payload_comes_back_from_encrypt_then_decrypt() -> None:
    codec = EncryptionCodec([(TEST_KEY_ID, TEST_KEY)])
    original = plain("parcel lost")

    encrypted = codec.encrypt(original)

    assert encrypted.metadata["encoding"] == ENCODING
    assert b"parcel lost" not in encrypted.data
    assert codec.decrypt(encrypted) == original


@pytest.mark.parametrize("length", [0, 1, 12, 27])
def test_data_too_short_for_a_nonce_and_a_tag_is_a_decryption_error(length: int) -> None:
    codec = EncryptionCodec([(TEST_KEY_ID, TEST_KEY)])

    with pytest.raises(PayloadDecryptionError) as raised:
        codec.decrypt(sealed(bytes(length)))

    assert f"payload too short to be AES-GCM: {length} bytes" in str(raised.value)


def test_28_bytes_is_long_enough_to_be_tried_and_then_fails_authentication() -> None:
    codec = EncryptionCodec([(TEST_KEY_ID, TEST_KEY)])

    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        codec.decrypt(sealed(bytes(28)))


def test_any_value_error_of_aes_gcm_is_a_decryption_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Refusing:
        def __init__(self, key: bytes) -> None:
            pass

        def decrypt(self, nonce: bytes, data: bytes, associated: bytes | None) -> bytes:
            raise ValueError("Data too long")

    monkeypatch.setattr(codec_module, "AESGCM", Refusing)
    codec = EncryptionCodec([(TEST_KEY_ID, TEST_KEY)])

    with pytest.raises(PayloadDecryptionError, match=f"{TEST_KEY_ID!r} cannot be decrypted"):
        codec.decrypt(sealed(bytes(64)))


def test_an_unknown_key_id_is_named_and_the_known_ones_are_not() -> None:
    codec = EncryptionCodec([(TEST_KEY_ID, TEST_KEY), (OTHER_KEY_ID, OTHER_KEY)])

    with pytest.raises(PayloadDecryptionError) as raised:
        codec.decrypt(sealed(bytes(64), key_id="retired-2023"))

    message = str(raised.value)
    assert "encrypted with key id 'retired-2023', which is not among this service's keys" in (
        message
    )
    assert TEST_KEY_ID not in message
    assert OTHER_KEY_ID not in message


async def test_encoding_an_encrypted_payload_leaves_it_as_it_was() -> None:
    codec = EncryptionCodec([(TEST_KEY_ID, TEST_KEY)])
    [once] = await codec.encode([plain("receipt checked")])

    [twice] = await codec.encode([once])

    assert twice == once
    assert await codec.decode([twice]) == [plain("receipt checked")]


async def test_a_payload_encrypted_under_another_key_is_not_wrapped_under_ours() -> None:
    ours = EncryptionCodec([(TEST_KEY_ID, TEST_KEY), (OTHER_KEY_ID, OTHER_KEY)])
    [theirs] = await EncryptionCodec([(OTHER_KEY_ID, OTHER_KEY)]).encode([plain("x")])

    [kept] = await ours.encode([theirs])

    assert kept.metadata[KEY_ID_METADATA] == OTHER_KEY_ID.encode()
    assert await ours.decode([kept]) == [plain("x")]
