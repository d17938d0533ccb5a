"""An independent reference implementation of nymchat's byte formats, for tests only.

Written from the formats in docs/PROTOCOL.md and rust_ext/src/{identity,envelope,framing}.rs
with only `cryptography` and the standard library, never by calling `nymchat._native`, so
the two implementations check each other (tests/test_interop.py) and the committed
vectors in tests/vectors/ (made by scripts/make_vectors.py) pin both. scripts/bench.py
also uses it as the pure-Python baseline; `RefPublicKey` and `RefIdentity` keep their
keys loaded, like `_native.PublicKey` and `_native.Identity`, so timings compare like
with like. Not for production: no zeroizing, no constant-time care beyond the libraries'.

Formats (all integers big-endian):

    signed  = b"nymchat-sig-v1\\0" ‖ len(label) u8 ‖ label ‖ message        (Ed25519)
    envelope = 0x01 ‖ ephemeral[32] ‖ message_id[16] ‖ AES-256-GCM(inner) ‖ tag[16]
      ad    = envelope[:49] ‖ len(context) u8 ‖ context ‖ recipient_x25519[32]
      inner = sender[32] ‖ sign("envelope", ad ‖ sender ‖ plaintext)[64] ‖ plaintext
      key[32] ‖ nonce[12] = HKDF-SHA256(ikm = X25519(ephemeral, recipient),
            salt = ephemeral_public ‖ recipient, info = b"nymchat-envelope-v1\\0" ‖ len ‖ context)
    anonymous envelope = 0x02 ‖ ephemeral[32] ‖ message_id[16] ‖ AES-256-GCM(plaintext) ‖ tag[16]
      (the same ad; info = b"nymchat-anonymous-envelope-v1\\0" ‖ len ‖ context; no signature)
    frame   = 0x01 ‖ message_id[16] ‖ index u16 ‖ count u16 ‖ total_len u32 ‖ chunk[1575]
"""

from __future__ import annotations

import os
import re

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SIGNATURE_DOMAIN = b"nymchat-sig-v1\x00"
ENVELOPE_KDF_INFO = b"nymchat-envelope-v1\x00"
ANONYMOUS_KDF_INFO = b"nymchat-anonymous-envelope-v1\x00"
ANONYMOUS_VERSION = 2
ANONYMOUS_OVERHEAD = 1 + 32 + 16 + 16
ENVELOPE_LABEL = "envelope"
ENVELOPE_VERSION = 1
ENVELOPE_HEADER_LEN = 1 + 32 + 16
ENVELOPE_OVERHEAD = ENVELOPE_HEADER_LEN + 32 + 64 + 16
FRAME_VERSION = 1
FRAME_SIZE = 1600
FRAME_HEADER_LEN = 1 + 16 + 2 + 2 + 4
CHUNK_LEN = FRAME_SIZE - FRAME_HEADER_LEN
MAX_FRAMES = 49_152
_LABEL = re.compile(r"[a-z0-9._/-]{1,64}")

# Ed25519 field prime and the y-coordinates (mod P) of the 8 points of small order:
# the identity (1), order 2 (P-1), order 4 (0) and order 8 (±_Y8). A key or signature R
# with one of these is refused, as ed25519-dalek's `is_weak` and `verify_strict` do.
_P = 2**255 - 19
_D = -121665 * pow(121666, -1, _P) % _P
_Y8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022
_SMALL_ORDER_Y = frozenset({0, 1, _P - 1, _Y8, _P - _Y8})


class Rejected(ValueError):
    """Input the format does not allow: bad label, key, signature, envelope or frame.
    `reason` is a short code (for frames: size, version, index, bucket, length, padding)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def _y(encoding: bytes) -> int:
    return int.from_bytes(encoding, "little") % 2**255 % _P


def decompresses(encoding: bytes) -> bool:
    """Whether 32 bytes decompress to an Ed25519 point as curve25519-dalek decompresses them:
    y reduced mod P, x² from the curve equation a square (x = 0 whatever the sign bit)."""
    y = _y(encoding)
    x2 = (y * y - 1) * pow(_D * y * y + 1, -1, _P) % _P
    return pow(x2, (_P - 1) // 2, _P) in (0, 1)


def _check_label(label: str) -> bytes:
    if not _LABEL.fullmatch(label):
        raise Rejected("label", f"{label!r} must be 1-64 characters of [a-z0-9._/-]")
    return label.encode()


def _raw(public_key) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _need(data: bytes, length: int, what: str) -> bytes:
    if len(data) != length:
        raise Rejected("length", f"{what} must be {length} bytes")
    return bytes(data)


# --- signatures -------------------------------------------------------------------------


def signed_bytes(label: str, message: bytes) -> bytes:
    """The exact bytes an Ed25519 signature covers for `label` and `message`."""
    raw = _check_label(label)
    return SIGNATURE_DOMAIN + bytes([len(raw)]) + raw + message


class RefPublicKey:
    """An Ed25519 public key checked (a curve point, not of small order) and loaded once."""

    def __init__(self, public32: bytes):
        self.raw = _need(public32, 32, "public key")
        if int.from_bytes(self.raw, "little") % 2**255 >= _P:
            raise Rejected("key", "non-canonical Ed25519 point encoding")
        if not decompresses(self.raw):
            raise Rejected("key", "not an Ed25519 point")
        if _y(self.raw) in _SMALL_ORDER_Y:
            raise Rejected("key", "weak Ed25519 key")
        self._key = Ed25519PublicKey.from_public_bytes(self.raw)

    def verify(self, label: str, message: bytes, sig: bytes) -> None:
        """Raises `Rejected` unless `sig` signs `message` in the role `label`."""
        data = signed_bytes(label, message)
        if len(sig) != 64 or _y(sig[:32]) in _SMALL_ORDER_Y:
            raise Rejected("signature")
        try:
            self._key.verify(sig, data)  # also refuses a non-canonical s (>= group order)
        except InvalidSignature:
            raise Rejected("signature") from None


def sign(seed32: bytes, label: str, message: bytes) -> bytes:
    key = Ed25519PrivateKey.from_private_bytes(_need(seed32, 32, "seed"))
    return key.sign(signed_bytes(label, message))


def verify(public32: bytes, label: str, message: bytes, sig: bytes) -> None:
    RefPublicKey(public32).verify(label, message, sig)


def public_key(seed32: bytes) -> bytes:
    """The Ed25519 public key of a seed."""
    return _raw(Ed25519PrivateKey.from_private_bytes(_need(seed32, 32, "seed")).public_key())


def x25519_public(secret32: bytes) -> bytes:
    secret = _need(secret32, 32, "X25519 secret")
    return _raw(X25519PrivateKey.from_private_bytes(secret).public_key())


# --- envelopes --------------------------------------------------------------------------


class RefIdentity:
    """Ed25519 seed and X25519 secret (the 64 bytes of `Identity.secret_bytes()`), loaded."""

    def __init__(self, seed32: bytes, x25519_secret32: bytes | None = None):
        """Without `x25519_secret32` the identity can sign and seal, not open."""
        self._signing = Ed25519PrivateKey.from_private_bytes(_need(seed32, 32, "seed"))
        self.signing_public = _raw(self._signing.public_key())
        if x25519_secret32 is not None:
            secret = _need(x25519_secret32, 32, "X25519 secret")
            self.agreement = X25519PrivateKey.from_private_bytes(secret)
            self.agreement_public = _raw(self.agreement.public_key())

    def sign(self, label: str, message: bytes) -> bytes:
        return self._signing.sign(signed_bytes(label, message))


def _cipher(own, peer32, ephemeral32, recipient32, context_raw, info=ENVELOPE_KDF_INFO):
    """AES-256-GCM and nonce from X25519(own, peer) and the envelope's public values."""
    try:
        shared = own.exchange(X25519PublicKey.from_public_bytes(peer32))
    except ValueError:  # OpenSSL refuses an all-zero shared secret
        raise Rejected("key", "low-order X25519 key") from None
    if shared == bytes(32):
        raise Rejected("key", "low-order X25519 key")
    okm = HKDF(
        algorithm=hashes.SHA256(),
        length=44,
        salt=ephemeral32 + recipient32,
        info=info + bytes([len(context_raw)]) + context_raw,
    ).derive(shared)
    return AESGCM(okm[:32]), okm[32:]


def _seal_header(version, info, recipient_x25519_public32, context, message_id16, ephemeral32):
    """An envelope's header, associated data and cipher, with a fresh ephemeral key unless
    `ephemeral32` is given (test vectors)."""
    context_raw = _check_label(context)
    recipient = _need(recipient_x25519_public32, 32, "recipient key")
    ephemeral = X25519PrivateKey.from_private_bytes(
        _need(ephemeral32 or os.urandom(32), 32, "ephemeral secret")
    )
    header = bytes([version]) + _raw(ephemeral.public_key()) + _need(message_id16, 16, "message id")
    aead, nonce = _cipher(ephemeral, recipient, header[1:33], recipient, context_raw, info)
    return header, header + bytes([len(context_raw)]) + context_raw + recipient, aead, nonce


def seal_with(
    sender: RefIdentity,
    recipient_x25519_public32: bytes,
    context: str,
    message_id16: bytes,
    plaintext: bytes,
    ephemeral_secret32: bytes | None = None,
) -> bytes:
    """Seals `plaintext` from `sender` to an X25519 public key, with a fresh ephemeral key
    unless `ephemeral_secret32` is given (test vectors)."""
    header, ad, aead, nonce = _seal_header(
        ENVELOPE_VERSION,
        ENVELOPE_KDF_INFO,
        recipient_x25519_public32,
        context,
        message_id16,
        ephemeral_secret32,
    )
    signature = sender.sign(ENVELOPE_LABEL, ad + sender.signing_public + plaintext)
    return header + aead.encrypt(nonce, sender.signing_public + signature + plaintext, ad)


def _open_body(version, minimum, info, own, context, envelope):
    """Checks an envelope's length and version and decrypts it with the X25519 key `own`:
    returns (header, decrypted body, associated data)."""
    context_raw = _check_label(context)
    envelope = bytes(envelope)
    if len(envelope) < minimum:
        raise Rejected("envelope", "too short")
    if envelope[0] != version:
        raise Rejected("envelope", "unknown envelope version")
    header, body = envelope[:ENVELOPE_HEADER_LEN], envelope[ENVELOPE_HEADER_LEN:]
    own_public, ephemeral = _raw(own.public_key()), header[1:33]
    try:
        aead, nonce = _cipher(own, ephemeral, ephemeral, own_public, context_raw, info)
    except Rejected:
        raise Rejected("envelope", "bad ephemeral key") from None
    ad = header + bytes([len(context_raw)]) + context_raw + own_public
    try:
        return header, aead.decrypt(nonce, body, ad), ad
    except InvalidTag:
        raise Rejected("envelope", "authentication failed") from None


def open_with(
    recipient: RefIdentity, context: str, envelope: bytes, expected_sender: bytes | None = None
) -> tuple[bytes, bytes, bytes]:
    """Opens an envelope to `recipient`: returns (sender_public, message_id, plaintext)."""
    header, inner, ad = _open_body(
        ENVELOPE_VERSION,
        ENVELOPE_OVERHEAD,
        ENVELOPE_KDF_INFO,
        recipient.agreement,
        context,
        envelope,
    )
    sender, signature, plaintext = inner[:32], inner[32:96], inner[96:]
    if expected_sender is not None and bytes(expected_sender) != sender:
        raise Rejected("envelope", "sent by an unexpected key")
    RefPublicKey(sender).verify(ENVELOPE_LABEL, ad + sender + plaintext, signature)
    return sender, header[33:], plaintext


def seal(
    sender_seed32: bytes,
    recipient_x25519_public32: bytes,
    context: str,
    message_id16: bytes,
    plaintext: bytes,
    ephemeral_secret32: bytes | None = None,
) -> bytes:
    """`seal_with` from the Ed25519 seed `sender_seed32`."""
    sender = RefIdentity(sender_seed32)
    args = (recipient_x25519_public32, context, message_id16, plaintext, ephemeral_secret32)
    return seal_with(sender, *args)


def open_(
    recipient_x25519_secret32: bytes,
    context: str,
    envelope: bytes,
    expected_sender: bytes | None = None,
) -> tuple[bytes, bytes, bytes]:
    """`open_with` for the holder of the X25519 secret `recipient_x25519_secret32`."""
    recipient = RefIdentity(bytes(32), recipient_x25519_secret32)  # its Ed25519 half is unused
    return open_with(recipient, context, envelope, expected_sender)


def seal_anonymous(
    recipient_x25519_public32: bytes,
    context: str,
    message_id16: bytes,
    plaintext: bytes,
    ephemeral_secret32: bytes | None = None,
) -> bytes:
    """An anonymous envelope: no sender, no signature."""
    header, ad, aead, nonce = _seal_header(
        ANONYMOUS_VERSION,
        ANONYMOUS_KDF_INFO,
        recipient_x25519_public32,
        context,
        message_id16,
        ephemeral_secret32,
    )
    return header + aead.encrypt(nonce, plaintext, ad)


def open_anonymous(
    recipient_x25519_secret32: bytes, context: str, envelope: bytes
) -> tuple[bytes, bytes]:
    """Opens an anonymous envelope: returns (message_id, plaintext)."""
    own = X25519PrivateKey.from_private_bytes(_need(recipient_x25519_secret32, 32, "secret"))
    header, plaintext, _ = _open_body(
        ANONYMOUS_VERSION, ANONYMOUS_OVERHEAD, ANONYMOUS_KDF_INFO, own, context, envelope
    )
    return header[33:], plaintext


# --- framing ----------------------------------------------------------------------------


def _is_bucket(count: int) -> bool:
    """Buckets are 2**k and 3 * 2**k: 1, 2, 3, 4, 6, 8, 12, 16, 24, ..."""
    odd = count
    while odd and odd % 2 == 0:
        odd //= 2
    return 1 <= count <= MAX_FRAMES and odd in (1, 3)


def frame_count(n: int) -> int:
    """Frames a payload of `n` bytes is sent as: the smallest bucket of enough chunks."""
    count = max(1, -(-n // CHUNK_LEN))
    while count <= MAX_FRAMES and not _is_bucket(count):
        count += 1
    if count > MAX_FRAMES:
        raise Rejected("length", f"payload of {n} bytes is too large to frame")
    return count


def encode_frames(payload: bytes, message_id16: bytes) -> list[bytes]:
    message_id = _need(message_id16, 16, "message id")
    count = frame_count(len(payload))
    frames = []
    for index in range(count):
        chunk = payload[index * CHUNK_LEN : (index + 1) * CHUNK_LEN]
        header = bytes([FRAME_VERSION]) + message_id
        header += index.to_bytes(2, "big") + count.to_bytes(2, "big")
        header += len(payload).to_bytes(4, "big")
        frames.append(header + chunk.ljust(CHUNK_LEN, b"\0"))
    return frames


def parse_frame(frame: bytes) -> tuple[bytes, int, int, int, bytes]:
    """Checks one frame; returns (message_id, index, count, total_len, data)."""
    if len(frame) != FRAME_SIZE:
        raise Rejected("size", f"frame is {len(frame)} bytes, expected {FRAME_SIZE}")
    if frame[0] != FRAME_VERSION:
        raise Rejected("version", f"unknown frame version {frame[0]}")
    message_id = bytes(frame[1:17])
    index = int.from_bytes(frame[17:19], "big")
    count = int.from_bytes(frame[19:21], "big")
    total_len = int.from_bytes(frame[21:25], "big")
    if index >= count:
        raise Rejected("index", f"frame index {index} of {count}")
    if not _is_bucket(count):
        raise Rejected("bucket", f"{count} frames is not a bucket")
    try:
        expected = frame_count(total_len)
    except Rejected:
        expected = None
    if expected != count:
        raise Rejected("length", f"{count} frames is not the bucket for {total_len} bytes")
    data_len = min(max(total_len - index * CHUNK_LEN, 0), CHUNK_LEN)
    chunk = frame[FRAME_HEADER_LEN:]
    if any(chunk[data_len:]):
        raise Rejected("padding", "non-zero padding")
    return message_id, index, count, total_len, bytes(chunk[:data_len])


def reassemble(frames) -> tuple[bytes, bytes]:
    """Reassembles the frames of one message, in any order, duplicates allowed."""
    parts: dict[int, bytes] = {}
    first = None
    for frame in frames:
        message_id, index, count, total_len, data = parse_frame(frame)
        if first is None:
            first = (message_id, count, total_len)
        elif first != (message_id, count, total_len):
            raise Rejected("mismatch", "frame disagrees with earlier frames of its message")
        parts[index] = data
    if first is None or len(parts) != first[1]:
        raise Rejected("missing", "not every frame of the message is here")
    return first[0], b"".join(parts[i] for i in range(first[1]))
