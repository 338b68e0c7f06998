"""SPEC §7 key hygiene: non-canonical and small-order Ed25519 public keys are refused where they are
read; verification refuses S >= L and a small-order R.

The fixtures (the torsion points and their 14 encodings) are derived here with arithmetic of the test's
own (extended coordinates, RFC 8032 §5.1.4 formulas; Euler's criterion for decoding), not with the
package's code, so the two check each other.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
import support
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

import smcp
from smcp import keys
from smcp.errors import SmcpUsageError

P = 2**255 - 19
D = -121665 * pow(121666, -1, P) % P
L = 2**252 + 27742317777372353535851937790883648493
Ext = tuple[int, int, int, int]  # (X, Y, Z, T) with x = X/Z, y = Y/Z, x·y = T/Z


def ext_add(a: Ext, b: Ext) -> Ext:
    """RFC 8032 §5.1.4 addition in extended coordinates (complete: doubles too)."""
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa, bb = (y1 - x1) * (y2 - x2) % P, (y1 + x1) * (y2 + x2) % P
    cc, dd = t1 * 2 * D * t2 % P, z1 * 2 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return e * f % P, g * h % P, f * g % P, e * h % P


ZERO: Ext = (0, 1, 1, 0)


def ext_mul(k: int, point: Ext) -> Ext:
    out = ZERO
    for bit in bin(k)[2:]:
        out = ext_add(out, out)
        if bit == "1":
            out = ext_add(out, point)
    return out


def ext_neg(point: Ext) -> Ext:
    x, y, z, t = point
    return -x % P, y, z, -t % P


def affine(point: Ext) -> tuple[int, int]:
    x, y, z, _ = point
    zi = pow(z, -1, P)
    return x * zi % P, y * zi % P


def is_zero(point: Ext) -> bool:
    return affine(point) == (0, 1)


def enc(point: Ext) -> bytes:
    x, y = affine(point)
    return (y | (x & 1) << 255).to_bytes(32, "little")


def reference_x2(y: int) -> int:
    """x² for this y (mod p): (y² - 1) / (d·y² + 1)."""
    return (y * y - 1) * pow(D * y * y + 1, -1, P) % P


def reference_point(raw: bytes, *, strict: bool) -> Ext | None:
    """Decodes by Euler's criterion and a square root by brute exponent search; lax allows y >= p and x = 0 signed."""
    n = int.from_bytes(raw, "little")
    y, sign = n & ((1 << 255) - 1), n >> 255
    if strict and y >= P:
        return None
    y %= P
    x2 = reference_x2(y)
    if x2 != 0 and pow(x2, (P - 1) // 2, P) != 1:  # Euler: not a square, no x
        return None
    if strict and x2 == 0 and sign:
        return None
    x = next(c for c in (pow(x2, (P + 3) // 8, P), pow(x2, (P + 3) // 8, P) * pow(2, (P - 1) // 4, P) % P) if c * c % P == x2)
    if x & 1 != sign:
        x = -x % P
    return x, y, 1, x * y % P


BASE = reference_point((4 * pow(5, -1, P) % P).to_bytes(32, "little"), strict=True)
assert BASE is not None


def torsion_generator() -> Ext:
    """[L]Q keeps only Q's small-order part; the first Q (by y) whose part has order 8 generates them all."""
    y = 2
    while True:
        q = reference_point(y.to_bytes(32, "little"), strict=True)
        if q is not None:
            t = ext_mul(L, q)
            if not is_zero(ext_mul(4, t)):
                return t
        y += 1


T8 = torsion_generator()
TORSION = [ext_mul(k, T8) for k in range(8)]
TORSION_YS = sorted({affine(t)[1] for t in TORSION})
# Every encoding a lax decoder reads as a small-order point: a torsion y (or it + p below 2^255), either sign.
SMALL_ORDER = sorted(
    (spelled | sign << 255).to_bytes(32, "little")
    for y in TORSION_YS
    for spelled in (y, y + P)
    if spelled < 2**255
    for sign in (0, 1)
)
NO_X_Y = next(y for y in range(2, 100) if reference_point(y.to_bytes(32, "little"), strict=True) is None)
NOT_CANONICAL = [
    *((P + k).to_bytes(32, "little") for k in range(2, 19)),  # y = p+2 … p+18 = 2^255 - 1, the largest
    (2**256 - 1).to_bytes(32, "little"),  # the same, sign bit set
    NO_X_Y.to_bytes(32, "little"),
    (NO_X_Y | 1 << 255).to_bytes(32, "little"),
]


def text(raw: bytes) -> str:
    return "ed25519:" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def reference_usable(raw: bytes) -> bool:
    point = reference_point(raw, strict=True)
    return point is not None and affine(point)[1] not in TORSION_YS


# RFC 8032 §7.1 TESTs 1–3: (secret key seed, public key, message, signature).
RFC8032 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]


def test_the_fixtures_are_the_torsion_subgroup() -> None:
    assert len(TORSION_YS) == 5 and len(SMALL_ORDER) == 14 and len(set(SMALL_ORDER)) == 14
    assert sum(not is_zero(ext_mul(4, t)) for t in TORSION) == 4  # four of order 8
    for raw in SMALL_ORDER:
        point = reference_point(raw, strict=False)
        assert point is not None and is_zero(ext_mul(8, point))
    # The package derives its R list its own way: the same 14.
    assert keys._SMALL_ORDER_R == frozenset(SMALL_ORDER)


@pytest.mark.parametrize("seed, public, message, signature", RFC8032)
def test_rfc8032_vectors_sign_and_verify(seed: str, public: str, message: str, signature: str) -> None:
    b64 = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()  # noqa: E731
    signer = keys.signing_key("ed25519-secret:" + b64(bytes.fromhex(seed)))
    assert isinstance(signer, keys.Ed25519Secret) and signer.public.text == text(bytes.fromhex(public))
    data = bytes.fromhex(message)
    assert signer.sign(data) == signature
    pinned = keys.verify_keys(text(bytes.fromhex(public)))
    assert keys.verify_signature(pinned, data, signature)
    assert not keys.verify_signature(pinned, data + b"x", signature)


def test_keys_made_by_cryptography_are_accepted() -> None:
    for _ in range(30):
        private, secret_text, public_text = support.ed25519_pair()
        pinned = keys.verify_keys(public_text)
        assert keys.verify_signature(pinned, b"{}", private.sign(b"{}").hex())
        assert keys.signing_key(secret_text).public.text == public_text


@pytest.mark.parametrize("raw", SMALL_ORDER + NOT_CANONICAL, ids=lambda raw: raw.hex())
def test_small_order_and_non_canonical_keys_are_refused_where_read(raw: bytes) -> None:
    x = text(raw).split(":", 1)[1]
    small = raw in SMALL_ORDER and reference_point(raw, strict=True) is not None
    reason = "a small-order point: anyone could forge" if small else "not the canonical encoding of a point"
    readers = [
        lambda: keys.verify_keys(text(raw)),
        lambda: keys.verify_keys([support.ed25519_pair()[2], text(raw)]),
        lambda: keys.verify_keys({"kty": "OKP", "crv": "Ed25519", "x": x}),
        lambda: smcp.Client(
            "http://127.0.0.1:9/mcp", client_id="a", client_secret=support.ed25519_pair()[1], server_key=text(raw)
        ),
    ]
    for read in readers:
        with pytest.raises(SmcpUsageError) as caught:
            read()
        message = str(caught.value)
        assert "is not a usable Ed25519 public key" in message and reason in message
        assert "smcp keygen --alg ed25519" in message and x not in message


def small_order_r_signature(a: int, data: bytes) -> tuple[bytes, bytes, bytes]:
    """For A = [a]B + T8: S = k·a gives [S]B - [k]A = -[k]T8, so R = -[j]T8 verifies (cofactorless) when k ≡ j mod 8."""
    public = enc(ext_add(ext_mul(a, BASE), T8))
    for attempt in range(200):
        message = data + str(attempt).encode()
        for j in range(8):
            r = enc(ext_neg(ext_mul(j, T8)))
            k = int.from_bytes(hashlib.sha512(r + public + message).digest(), "little") % L
            if k % 8 == j:
                return public, message, r + ((k * a) % L).to_bytes(32, "little")
    raise AssertionError("no attempt matched")  # 200 × 8 tries at 1/8 each: never


def test_strict_verification_refuses_small_order_r_and_s_at_least_l() -> None:
    public, message, signature = small_order_r_signature(0x5EED5EED5EED, b'{"a":1}')
    # OpenSSL alone accepts it (the key is of mixed order, which SPEC §7 allows) ...
    Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    pinned = keys.verify_keys(text(public))
    # ... strict verification does not.
    assert not keys.verify_signature(pinned, message, signature.hex())
    private, _, public_text = support.ed25519_pair()
    good = private.sign(b"{}")
    pinned = keys.verify_keys(public_text)
    assert keys.verify_signature(pinned, b"{}", good.hex())
    plus_l = good[:32] + (int.from_bytes(good[32:], "little") + L).to_bytes(32, "little")
    assert not keys.verify_signature(pinned, b"{}", plus_l.hex())
    for r in SMALL_ORDER:
        assert not keys.verify_signature(pinned, b"{}", (r + bytes(32)).hex())


# Random keys almost never sit on an edge, so most cases start from one and change a byte.
EDGES = SMALL_ORDER + NOT_CANONICAL
near_edge = st.builds(
    lambda base, at, xor: bytes(b ^ xor if i == at else b for i, b in enumerate(base)),
    st.sampled_from(EDGES),
    st.integers(0, 31),
    st.integers(0, 255),
)
near_p = st.builds(
    lambda y, sign: (y | sign << 255).to_bytes(32, "little"),
    st.integers(0, 40) | st.integers(P - 40, 2**255 - 1),
    st.integers(0, 1),
)
key_bytes = st.binary(min_size=32, max_size=32) | near_edge | near_p | st.sampled_from(EDGES)


@given(raw=key_bytes)
@settings(max_examples=300)
def test_a_key_is_accepted_exactly_when_it_is_a_canonical_point_not_of_small_order(raw: bytes) -> None:
    try:
        pinned = keys.verify_keys(text(raw))
    except SmcpUsageError:
        assert not reference_usable(raw)
        return
    assert reference_usable(raw)
    assert pinned[0].raw == raw
    Ed25519PublicKey.from_public_bytes(raw)  # cryptography loads what is accepted


VALID_PRIVATE = Ed25519PrivateKey.generate()
VALID_PINNED = keys.verify_keys(text(VALID_PRIVATE.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)))
VALID_SIGNATURE = VALID_PRIVATE.sign(b'{"a":1}')


@given(
    mutation=st.lists(st.tuples(st.integers(0, 63), st.integers(1, 255)), min_size=1, max_size=4).map(
        lambda edits: bytes(b ^ next((x for at, x in edits if at == i), 0) for i, b in enumerate(VALID_SIGNATURE))
    )
    | st.builds(lambda r, s: r + s.to_bytes(32, "little"), st.sampled_from(SMALL_ORDER), st.integers(0, L - 1))
    | st.integers(1, 14).map(  # S + 14·L < 2^256
        lambda k: VALID_SIGNATURE[:32] + (int.from_bytes(VALID_SIGNATURE[32:], "little") + k * L).to_bytes(32, "little")
    )
)
@settings(max_examples=200)
def test_no_mutation_of_a_valid_signature_verifies(mutation: bytes) -> None:
    if mutation == VALID_SIGNATURE:
        return
    assert not keys.verify_signature(VALID_PINNED, b'{"a":1}', mutation.hex())
    if mutation[:32] not in SMALL_ORDER and int.from_bytes(mutation[32:], "little") < L:
        # Outside the strict rules, cryptography agrees.
        with pytest.raises(InvalidSignature):
            VALID_PRIVATE.public_key().verify(mutation, b'{"a":1}')
