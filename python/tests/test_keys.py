"""Keys (SPEC §3, §7): formats, which key may do what, and signature checks."""

from __future__ import annotations

import base64

import pytest
import support
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import smcp
from smcp import keys
from smcp.errors import SmcpUsageError

DATA = b'{"a":1}'


def test_hmac_signatures_are_the_seeds() -> None:
    key = keys.signing_key(support.CLIENT_SECRET)
    payload = {"a": 1, "é": [6.0]}
    assert key.sign(smcp.canonical.dumps(payload)) == support.hmac_sign(support.CLIENT_SECRET, payload)


def test_ed25519_signatures_verify_with_cryptography_and_back() -> None:
    private, secret_text, public_text = support.ed25519_pair()
    signer = keys.signing_key(secret_text)
    assert isinstance(signer, keys.Ed25519Secret) and signer.public.text == public_text
    signature = signer.sign(DATA)
    assert len(signature) == 128 and signature == signature.lower()
    private.public_key().verify(bytes.fromhex(signature), DATA)  # raises if not
    pinned = keys.verify_keys(public_text)
    assert keys.verify_signature(pinned, DATA, private.sign(DATA).hex())
    assert not keys.verify_signature(pinned, DATA + b" ", private.sign(DATA).hex())


def test_jwk_keys_are_accepted() -> None:
    private, secret_text, public_text = support.ed25519_pair()
    d = secret_text.split(":", 1)[1]
    x = public_text.split(":", 1)[1]
    assert keys.signing_key({"kty": "OKP", "crv": "Ed25519", "d": d, "x": x}).public.text == public_text
    assert keys.verify_keys({"kty": "OKP", "crv": "Ed25519", "x": x})[0].text == public_text
    with pytest.raises(SmcpUsageError, match="OKP"):
        keys.verify_keys({"kty": "EC", "crv": "P-256", "x": x})
    with pytest.raises(SmcpUsageError, match='no "x"'):
        keys.signing_key({"kty": "OKP", "crv": "Ed25519", "d": d})
    _, _, other_public = support.ed25519_pair()
    with pytest.raises(SmcpUsageError, match="not the public key of its"):
        keys.signing_key({"kty": "OKP", "crv": "Ed25519", "d": d, "x": other_public.split(":", 1)[1]})


@pytest.mark.parametrize(
    "text",
    [
        "ed25519:",
        "ed25519:" + "A" * 42,
        "ed25519:" + "A" * 44,
        "ed25519:" + "A" * 42 + "=",
        "ed25519:" + "A" * 42 + "B",  # spare bits set: not the canonical spelling
        "ed25519:" + "A" * 42 + "+",
        "ed25519:" + "A" * 41 + "/A",
        "ed25519-secret:" + "A" * 43 + "\n",
        "Ed25519:" + "A" * 43,  # near misses are refused, not taken as HMAC secrets
        "ed25519_secret:" + "A" * 43,
        "ED25519-SECRET:" + "A" * 43,
    ],
)
def test_malformed_ed25519_keys_are_refused(text: str) -> None:
    with pytest.raises(SmcpUsageError, match="keygen"):
        keys.verify_keys(text) if text.startswith("ed25519:") else keys.signing_key(text)


def test_which_key_may_do_what() -> None:
    _, secret_text, public_text = support.ed25519_pair()
    with pytest.raises(SmcpUsageError, match="cannot sign"):
        keys.signing_key(public_text)
    with pytest.raises(SmcpUsageError, match="private key"):
        keys.verify_keys(secret_text)
    with pytest.raises(SmcpUsageError, match="mixes"):
        keys.verify_keys([support.SERVER_SECRET, public_text])
    with pytest.raises(SmcpUsageError, match="empty"):
        keys.verify_keys([])


def test_short_hmac_secrets_are_refused_without_showing_them() -> None:
    with pytest.raises(SmcpUsageError) as caught:
        keys.signing_key("short-secret-15")
    assert "15 bytes" in str(caught.value) and "short-secret" not in str(caught.value)
    assert keys.signing_key(b"x" * 16).sign(DATA)


def test_no_secret_in_reprs() -> None:
    _, secret_text, _ = support.ed25519_pair()
    for key in (keys.signing_key(support.CLIENT_SECRET), keys.signing_key(secret_text)):
        assert support.CLIENT_SECRET not in repr(key) and secret_text.split(":")[1] not in repr(key)
    client = smcp.Client(
        "http://127.0.0.1:9/mcp", client_id="a", client_secret=support.CLIENT_SECRET, server_key=support.SERVER_SECRET
    )
    assert support.CLIENT_SECRET not in repr(client) and support.SERVER_SECRET not in repr(client)


def test_a_client_and_server_key_of_different_algorithms_is_refused() -> None:
    _, secret_text, public_text = support.ed25519_pair()
    with pytest.raises(SmcpUsageError, match="SPEC §7"):
        smcp.Client("http://127.0.0.1:9", client_id="a", client_secret=support.CLIENT_SECRET, server_key=public_text)
    with pytest.raises(SmcpUsageError, match="SPEC §7"):
        smcp.Client("http://127.0.0.1:9", client_id="a", client_secret=secret_text, server_key=support.SERVER_SECRET)


def test_hmac_signature_format_is_exact() -> None:
    pinned = keys.verify_keys(support.SERVER_SECRET)
    good = support.hmac_hex(support.SERVER_SECRET.encode(), DATA)
    assert keys.verify_signature(pinned, DATA, good)
    for bad in (good.upper(), good[:-1], good + "0", good + "\n", " " + good, good * 2, "", "g" * 64):
        assert not keys.verify_signature(pinned, DATA, bad)


def test_rotation_any_pinned_key_verifies() -> None:
    pinned = keys.verify_keys(["old-server-secret-0123456789", support.SERVER_SECRET])
    assert keys.verify_signature(pinned, DATA, support.hmac_hex(support.SERVER_SECRET.encode(), DATA))
    a, _, public_a = support.ed25519_pair()
    b, _, public_b = support.ed25519_pair()
    c, _, _ = support.ed25519_pair()
    pinned = keys.verify_keys([public_a, public_b])
    assert keys.verify_signature(pinned, DATA, b.sign(DATA).hex())
    assert not keys.verify_signature(pinned, DATA, c.sign(DATA).hex())


def test_ed25519_refuses_what_is_not_its_own_signature() -> None:
    private, _, public_text = support.ed25519_pair()
    pinned = keys.verify_keys(public_text)
    good = private.sign(DATA)
    raw_public = base64.urlsafe_b64decode(public_text.split(":")[1] + "=")
    order = 2**252 + 27742317777372353535851937790883648493
    s = int.from_bytes(good[32:], "little")
    non_canonical = good[:32] + (s + order).to_bytes(32, "little")  # S >= L: the same point, refused
    refused = [
        support.hmac_hex(raw_public, DATA),  # an HMAC made with the public key as the secret
        support.hmac_hex(public_text.encode(), DATA),
        good.hex().upper(),
        good.hex()[:-2],
        non_canonical.hex(),
        Ed25519PrivateKey.generate().sign(DATA).hex(),
    ]
    for signature in refused:
        assert not keys.verify_signature(pinned, DATA, signature)
    # And an HMAC-holding client refuses a (valid) Ed25519 signature outright.
    assert not keys.verify_signature(keys.verify_keys(support.SERVER_SECRET), DATA, good.hex())
