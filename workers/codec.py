"""Payload encryption, so workflow histories hold no plaintext customer data or secrets.

Every payload our clients and workers send to Temporal (workflow and activity inputs and
results, signals, updates, queries, memos, failure messages and stack traces) passes through
``EncryptionCodec`` after the pydantic converter has turned it into a ``Payload``.

The format, for any Temporal SDK that needs to read or write it:

- Algorithm: AES-GCM (``cryptography``'s ``AESGCM``) with a 16, 24 or 32 byte key from
  ``REFUNDS_ENCRYPTION_KEYS`` (``id:base64key``, comma-separated; the FIRST key encrypts,
  every listed key decrypts, so keys rotate without breaking refunds in flight).
- Plaintext: the whole inner ``temporal.api.common.v1.Payload`` protobuf, serialized
  (its metadata, e.g. ``encoding: json/plain``, and its data).
- Nonce: 12 random bytes per payload; no associated data; 16-byte tag appended by AES-GCM.
- Encrypted payload: metadata ``encoding: binary/encrypted`` and
  ``encryption-key-id: <id>`` (both UTF-8), data = nonce (12 bytes) || ciphertext || tag.
- Authenticated: the inner payload, metadata and data alike (the GCM tag). The outer metadata
  is not: a tampered key id only selects another key, and the tag then fails.

Decoding a payload without ``encoding: binary/encrypted`` returns it unchanged, so plain JSON
from a client in another language is accepted (and is then stored as sent). Encoding a payload
that already has ``encoding: binary/encrypted`` returns it unchanged too, so it is never
wrapped twice. Decoding with an unknown key id, data too short to hold a nonce and a tag, or a
failed tag raises ``PayloadDecryptionError`` naming the payload's key id, never a key (nor the
other key ids this service knows).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from workers.settings import Settings, SettingsError

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
NONCE_BYTES = 12
TAG_BYTES = 16  # AES-GCM's tag, appended to the ciphertext

NO_KEYS = (
    "REFUNDS_ENCRYPTION_KEYS is not set: payloads would be stored in plaintext in Temporal's "
    "histories. Set it (id:base64key, e.g. local-1:$(openssl rand -base64 32)) or "
    "REFUNDS_ALLOW_UNENCRYPTED=true"
)


class PayloadDecryptionError(Exception):
    """An encrypted payload cannot be decrypted with the configured keys."""


class EncryptionCodec(PayloadCodec):
    """AES-GCM over whole payloads; the first key encrypts, all keys decrypt."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("EncryptionCodec needs at least one (id, key)")
        self.key_id = keys[0][0]
        self._encrypting = AESGCM(keys[0][1])
        self._decrypting = {key_id: AESGCM(key) for key_id, key in keys}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") == ENCODING:
            return payload  # already encrypted (by us or a client with the codec): not twice
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._encrypting.encrypt(nonce, payload.SerializeToString(), None)
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: self.key_id.encode()},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # plaintext from a client without the codec: accepted as sent
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        cipher = self._decrypting.get(key_id)
        if cipher is None:
            # Only the payload's own key id: whoever sent it need not learn the others.
            raise PayloadDecryptionError(
                f"payload encrypted with key id {key_id!r}, which is not among this service's keys"
            )
        if len(payload.data) < NONCE_BYTES + TAG_BYTES:
            raise PayloadDecryptionError(
                f"payload too short to be AES-GCM: {len(payload.data)} bytes "
                f"(at least {NONCE_BYTES + TAG_BYTES}: a {NONCE_BYTES}-byte nonce and a "
                f"{TAG_BYTES}-byte tag)"
            )
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, None)
        except InvalidTag:
            raise PayloadDecryptionError(
                f"payload with key id {key_id!r} failed authentication: the key under that id "
                "is not the one it was encrypted with, or the payload was altered"
            ) from None
        except ValueError as exc:  # data AES-GCM refuses outright (cryptography's checks)
            raise PayloadDecryptionError(
                f"payload with key id {key_id!r} cannot be decrypted: {exc}"
            ) from None
        try:
            return Payload.FromString(plain)
        except DecodeError:
            raise PayloadDecryptionError(
                f"payload with key id {key_id!r} decrypted to something that is not a Payload"
            ) from None


def encrypted_converter(keys: Sequence[tuple[str, bytes]]) -> DataConverter:
    """The pydantic converter with ``EncryptionCodec`` and failures encrypted too (the
    default failure converter would leave messages and stack traces in plaintext)."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keys),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def data_converter_for(settings: Settings) -> DataConverter:
    """The converter every client and worker of this service uses.

    Without keys it refuses (SettingsError) unless REFUNDS_ALLOW_UNENCRYPTED says plaintext
    histories are wanted, in which case it is the plain pydantic converter."""
    keys = settings.ops.encryption_keys
    if keys:
        return encrypted_converter(keys)
    if settings.ops.allow_unencrypted:
        return pydantic_data_converter
    raise SettingsError(NO_KEYS)
