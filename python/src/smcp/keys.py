"""Keys (SPEC §3, §7): HMAC-SHA256 secrets and Ed25519 key pairs.

A key string is ``ed25519:`` + base64url(32-byte public key), or
``ed25519-secret:`` + base64url(32-byte seed), or else an HMAC secret (its
UTF-8 bytes, at least 16). A JWK (RFC 8037, ``kty: "OKP"``, ``crv:
"Ed25519"``) is accepted too. The algorithm belongs to the key: a message
never chooses it.

Key hygiene (SPEC §7): an Ed25519 public key that is not a canonical point, or
is of small order, is refused where it is read (``SmcpUsageError``); a
signature with S >= L or a small-order R never verifies.

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


# --- Ed25519 key hygiene (SPEC §7) -------------------------------------------------------------
# No dependency offers a point check (cryptography loads any 32 bytes as a public key), so this is
# the one place the package does curve arithmetic: RFC 8032 §5.1.3 decoding and point addition on
# -x² + y² = 1 + d·x²·y² over p = 2^255 - 19, with Python ints. It only runs when a key is read
# (and once at import), never per message: verification keeps to OpenSSL plus two byte checks.
_P = 2**255 - 19
_D = -121665 * pow(121666, -1, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)  # a square root of -1 mod p
#: L, the order of the base point (RFC 8032 §5.1).
_L = 2**252 + 27742317777372353535851937790883648493
_IDENTITY = (0, 1)


def _sqrt(a: int) -> int | None:
    """A square root of ``a`` mod p, or None (p ≡ 5 mod 8: RFC 8032 §5.1.3's candidate, or it times √-1)."""
    x = pow(a, (_P + 3) // 8, _P)
    for candidate in (x, x * _SQRT_M1 % _P):
        if candidate * candidate % _P == a % _P:
            return candidate
    return None


def _with_y(y: int, x_odd: int) -> tuple[int, int] | None:
    """The point with this y (< p) and x's parity, or None when no x has x² = (y² - 1) / (d·y² + 1)."""
    # d·y² + 1 is never 0: -1/d is not a square mod p.
    x = _sqrt((y * y - 1) * pow(_D * y * y + 1, -1, _P))
    if x is None or (x == 0 and x_odd):  # x = 0 has one encoding only: its sign bit clear
        return None
    return (_P - x if x & 1 != x_odd else x), y


def _decode(raw: bytes) -> tuple[int, int] | None:
    """The affine point of a canonical 32-byte encoding (RFC 8032 §5.1.3), or None (y ≥ p, no x, x = 0 signed)."""
    n = int.from_bytes(raw, "little")
    y = n & ((1 << 255) - 1)
    return None if y >= _P else _with_y(y, n >> 255)


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    """Affine Edwards addition (a = -1); complete on this curve, so doubling is add(P, P)."""
    (x1, y1), (x2, y2) = a, b
    t = _D * x1 * x2 * y1 * y2 % _P
    return (x1 * y2 + y1 * x2) * pow(1 + t, -1, _P) % _P, (y1 * y2 + x1 * x2) * pow(1 - t, -1, _P) % _P


def _small_order(point: tuple[int, int]) -> bool:
    """True when [8]P is the identity: P is one of the 8 torsion points."""
    for _ in range(3):
        point = _add(point, point)
    return point == _IDENTITY


def public_key_flaw(raw: bytes) -> str | None:
    """Why 32 bytes are not a usable Ed25519 public key (SPEC §7), or None when they are.

    Against a small-order key, R = identity and S = 0 verify on every message: anyone could sign.
    """
    point = _decode(raw) if len(raw) == 32 else None
    if point is None:
        return "not the canonical encoding of a point on the curve"
    if _small_order(point):
        return "a small-order point: anyone could forge its signatures"
    return None


def _small_order_encodings() -> frozenset[bytes]:
    """Every encoding a lax decoder reads as a small-order point (14): R values strict verification refuses.

    The torsion points have y = 1 (the identity), y = -1, y = 0 (order 4), and, for order 8, the y
    with x² = -y² (their double has y = 0): on the curve that is d·y⁴ + 2·y² - 1 = 0.
    """
    ys = [1, _P - 1, 0]
    root = _sqrt(1 + _D)
    for r in (root, _P - root) if root is not None else ():
        y = _sqrt((r - 1) * pow(_D, -1, _P))
        if y is not None:
            ys += [y, _P - y]
    out: set[bytes] = set()
    for y in ys:
        # y + p still fits in 255 bits when y < 19; either sign bit (for x = 0 a lax decoder ignores it).
        for spelled in (y, y + _P) if y + _P < 2**255 else (y,):
            out.update((spelled | sign << 255).to_bytes(32, "little") for sign in (0, 1))
    return frozenset(out)


_SMALL_ORDER_R = _small_order_encodings()


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

    def __init__(self, raw: bytes, who: str = "the ed25519: key") -> None:
        flaw = public_key_flaw(raw)
        if flaw is not None:  # SPEC §7: refused where it is read; the message never quotes the key
            raise SmcpUsageError(
                f"{who} is not a usable Ed25519 public key ({flaw}); make a key pair with `smcp keygen --alg ed25519`"
            )
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
        """True when the 64-byte signature verifies, strictly (SPEC §7): S < L and R not of small order."""
        from cryptography.exceptions import InvalidSignature

        # Kept here whatever OpenSSL does: its check is cofactorless, so the owner of a key with a
        # torsion part could make small-order-R signatures that verify there and not elsewhere.
        if len(signature) != 64 or signature[:32] in _SMALL_ORDER_R or int.from_bytes(signature[32:], "little") >= _L:
            return False
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
        signature: bytes = self._key.sign(canonical)
        return signature.hex()


SigningKey = HmacKey | Ed25519Secret
VerifyKey = HmacKey | Ed25519Public


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
        keys.append(HmacKey(raw) if kind == "hmac" else Ed25519Public(raw, name))
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
