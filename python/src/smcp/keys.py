"""Keys (SPEC §3, §7): HMAC-SHA256 secrets and Ed25519 key pairs.

A key string is ``ed25519:`` + base64url(32-byte public key), or
``ed25519-secret:`` + base64url(32-byte seed), or else an HMAC secret (its
UTF-8 bytes, at least 16). A JWK (RFC 8037, ``kty: "OKP"``, ``crv:
"Ed25519"``) is accepted too. The algorithm belongs to the key: a message
never chooses it.

Ed25519 needs the optional ``cryptography`` package (``pip install
'smcp[ed25519]'``); HMAC needs only the standard library.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from typing import Any, Union

from .errors import SmcpUsageError

PUBLIC_PREFIX = "ed25519:"
SECRET_PREFIX = "ed25519-secret:"
#: HMAC secrets shorter than this many bytes are refused.
MIN_SECRET_BYTES = 16

HMAC_ALG = "hmac-sha256"
ED25519_ALG = "ed25519"

_HMAC_SIGNATURE = re.compile("[0-9a-f]{64}")
_ED25519_SIGNATURE = re.compile("[0-9a-f]{128}")
_B64URL_32 = re.compile("[A-Za-z0-9_-]{43}")
_LOOKS_ED25519 = re.compile("ed25519[-_:]", re.IGNORECASE)

#: What a key may be given as: a key string, HMAC secret bytes, or a JWK object.
KeyInput = Union[str, bytes, "dict[str, Any]"]


def _cryptography() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise SmcpUsageError(
            "Ed25519 keys need the 'cryptography' package: pip install 'smcp[ed25519]' (or pip install cryptography)"
        ) from None
    return ed25519


def b64url_32(text: str, what: str) -> bytes:
    """Decodes exactly 32 bytes of unpadded base64url, refusing any other spelling."""
    if not isinstance(text, str) or not _B64URL_32.fullmatch(text):
        raise SmcpUsageError(f"{what} is not 43 base64url characters (32 bytes); make one with `smcp keygen --alg ed25519`")
    raw = base64.urlsafe_b64decode(text + "=")
    # The last character carries 2 spare bits; only the spelling that re-encodes the same is the key.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != text:
        raise SmcpUsageError(f"{what} is not canonical base64url; make one with `smcp keygen --alg ed25519`")
    return raw


def b64url(raw: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class HmacKey:
    """An HMAC-SHA256 secret: signs and verifies (SPEC §3)."""

    alg = HMAC_ALG

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def __repr__(self) -> str:  # never the secret
        return "HmacKey(<secret>)"

    def sign(self, canonical: bytes) -> str:
        """64 lowercase hex digits."""
        return hmac.new(self._secret, canonical, hashlib.sha256).hexdigest()

    def mac(self, canonical: bytes) -> bytes:
        """The raw 32-byte MAC."""
        return hmac.new(self._secret, canonical, hashlib.sha256).digest()


class Ed25519Public:
    """A pinned Ed25519 public key: verifies only."""

    alg = ED25519_ALG

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        # One key object per key, made once (not per message).
        self._key = _cryptography().Ed25519PublicKey.from_public_bytes(raw)

    def __repr__(self) -> str:
        return f"Ed25519Public({self.text!r})"

    @property
    def text(self) -> str:
        """The key as ``ed25519:…``."""
        return PUBLIC_PREFIX + b64url(self.raw)

    def verify(self, canonical: bytes, signature: bytes) -> bool:
        """True when the 64-byte signature verifies (OpenSSL refuses a non-canonical S >= L)."""
        from cryptography.exceptions import InvalidSignature

        try:
            self._key.verify(signature, canonical)
        except InvalidSignature:
            return False
        return True


class Ed25519Secret:
    """An Ed25519 private key (from its 32-byte seed): signs."""

    alg = ED25519_ALG

    def __init__(self, seed: bytes) -> None:
        self._key = _cryptography().Ed25519PrivateKey.from_private_bytes(seed)
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        self.public = Ed25519Public(self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    def __repr__(self) -> str:  # never the seed
        return f"Ed25519Secret(public={self.public.text!r})"

    def sign(self, canonical: bytes) -> str:
        """128 lowercase hex digits."""
        return self._key.sign(canonical).hex()


SigningKey = Union[HmacKey, Ed25519Secret]
VerifyKey = Union[HmacKey, Ed25519Public]


def is_ed25519_text(value: object) -> bool:
    """True for a string that claims to be an Ed25519 key (public or private)."""
    return isinstance(value, str) and (value.startswith(PUBLIC_PREFIX) or value.startswith(SECRET_PREFIX))


def _jwk(value: dict[str, Any], who: str) -> tuple[str, bytes]:
    if value.get("kty") != "OKP" or value.get("crv") != "Ed25519":
        raise SmcpUsageError(
            f'{who}: only Ed25519 JWKs are accepted (kty "OKP", crv "Ed25519"); give an HMAC secret as a plain string'
        )
    if not isinstance(value.get("x"), str):
        raise SmcpUsageError(f'{who}: the JWK has no "x" (its public key; RFC 8037 requires it)')
    x = b64url_32(value["x"], f'{who}: the JWK\'s "x"')
    if "d" not in value:
        return "public", x
    seed = b64url_32(value["d"], f'{who}: the JWK\'s "d"')
    if Ed25519Secret(seed).public.raw != x:
        raise SmcpUsageError(f'{who}: the JWK\'s "x" is not the public key of its "d"; export the key pair again')
    return "secret", seed


def _classify(value: KeyInput, who: str) -> tuple[str, bytes]:
    """('hmac' | 'public' | 'secret', raw bytes) for one configured key."""
    if isinstance(value, dict):
        return _jwk(value, who)
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
    elif isinstance(value, str):
        if value.startswith(SECRET_PREFIX):
            return "secret", b64url_32(value[len(SECRET_PREFIX) :], f"{who}: the ed25519-secret: key")
        if value.startswith(PUBLIC_PREFIX):
            return "public", b64url_32(value[len(PUBLIC_PREFIX) :], f"{who}: the ed25519: key")
        if _LOOKS_ED25519.match(value):
            # A typo in an Ed25519 key string must not quietly become an HMAC secret.
            raise SmcpUsageError(
                f"{who}: a key starting with 'ed25519' must be 'ed25519:' + public key or 'ed25519-secret:' + seed "
                "(`smcp keygen --alg ed25519` prints both)"
            )
        raw = value.encode("utf-8")
    else:
        raise SmcpUsageError(f"{who}: a key must be a string, bytes or a JWK object, not {type(value).__name__}")
    if len(raw) < MIN_SECRET_BYTES:
        raise SmcpUsageError(
            f"{who}: the HMAC secret is {len(raw)} bytes; use at least {MIN_SECRET_BYTES} (generate one with `smcp keygen`)"
        )
    return "hmac", raw


def signing_key(value: KeyInput, who: str = "client_secret") -> SigningKey:
    """The key a client signs with: an HMAC secret or an ``ed25519-secret:`` key."""
    kind, raw = _classify(value, who)
    if kind == "public":
        raise SmcpUsageError(
            f"{who} is an Ed25519 public key, which cannot sign; give the client's ed25519-secret: key "
            "(the server holds the public one)"
        )
    return HmacKey(raw) if kind == "hmac" else Ed25519Secret(raw)


def verify_keys(value: KeyInput | Sequence[KeyInput], who: str = "server_key") -> list[VerifyKey]:
    """The keys a client verifies answers with: HMAC secrets or pinned ``ed25519:`` public keys, one kind only."""
    items: Iterable[KeyInput] = value if isinstance(value, (list, tuple)) else [value]  # type: ignore[list-item]
    keys: list[VerifyKey] = []
    for index, item in enumerate(items):
        name = f"{who} #{index + 1}" if isinstance(value, (list, tuple)) else who
        kind, raw = _classify(item, name)
        if kind == "secret":
            raise SmcpUsageError(
                f"{name} is an Ed25519 private key; a client pins the server's public key (ed25519:…), "
                "which `smcp keygen --alg ed25519 --json` prints beside it"
            )
        keys.append(HmacKey(raw) if kind == "hmac" else Ed25519Public(raw))
    if not keys:
        raise SmcpUsageError(f"{who} is empty; give the server's HMAC secret or its ed25519: public key")
    if len({key.alg for key in keys}) > 1:
        raise SmcpUsageError(
            f"{who} mixes HMAC secrets and Ed25519 public keys; give one kind (a client accepts answers of one algorithm)"
        )
    return keys


def verify_signature(keys: Sequence[VerifyKey], canonical: bytes, signature: str) -> bool:
    """True when ``signature`` verifies over ``canonical`` with one of ``keys`` (all of one algorithm).

    The format is checked first and exactly: 64 lowercase hex digits against
    HMAC keys, 128 against Ed25519 keys; anything else is refused before any
    key is used. Every key is tried even after a match, so timing does not
    tell which one matched.
    """
    if not keys:
        return False
    if keys[0].alg == HMAC_ALG:
        if not _HMAC_SIGNATURE.fullmatch(signature):
            return False
        given = bytes.fromhex(signature)
        matched = False
        for key in keys:
            matched = hmac.compare_digest(key.mac(canonical), given) or matched  # type: ignore[union-attr]
        return matched
    if not _ED25519_SIGNATURE.fullmatch(signature):
        return False
    raw = bytes.fromhex(signature)
    matched = False
    for key in keys:
        matched = key.verify(canonical, raw) or matched  # type: ignore[union-attr]
    return matched
