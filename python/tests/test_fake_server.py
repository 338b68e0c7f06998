"""Against a scripted fake server: every error code, forged, truncated, oversized and
slow answers, rate limits, timeouts and Ed25519 in both directions."""

from __future__ import annotations

import functools
import json
import threading
import time
from typing import Any

import pytest
import support
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from support import Jobs, Reply, error_for, fake_client, response_for, signed

import smcp
from smcp import ERROR_CODES, SmcpError
from smcp.keys import b64url_32


def local_error(code: str, call: Any) -> SmcpError:
    with pytest.raises(SmcpError) as caught:
        call()
    assert (caught.value.code, caught.value.origin) == (code, "local"), caught.value
    return caught.value


@pytest.mark.parametrize("code", sorted(ERROR_CODES))
def test_every_error_code_is_a_server_error(fake: Any, code: str) -> None:
    details = {"retry_after_ms": 1234} if code == "rate_limited" else [{"path": ["x"], "code": "too_small", "message": "m"}]
    server = fake(lambda req: error_for(req, code, details))
    with pytest.raises(SmcpError) as caught:
        fake_client(server).call("anything", {"a": 1})
    error = caught.value
    assert (error.code, error.origin, error.details) == (code, "server", details)
    assert error.retry_after_ms == (1234 if code == "rate_limited" else None)
    assert str(error) == f"{code}: said the fake"


# ---------------------------------------------------------------- forged answers


def forged_cases() -> dict[str, tuple[Any, str]]:
    other = support.Signer(secret="a-forger-secret-0123456789abcdef")
    sign = support.Signer(secret=support.SERVER_SECRET)

    def body(message: dict[str, Any]) -> bytes:
        return json.dumps(message).encode()

    return {
        "signed with another key": (
            lambda req: Reply(body(signed(response_for(req, result={"total": 1e6}), other))),
            "bad_signature",
        ),
        "unsigned": (lambda req: Reply(body({**response_for(req), "signature": ""})), "bad_signature"),
        "the seed's unsigned error": (lambda req: Reply(b'{"error": "bad signature"}'), "bad_envelope"),
        "another request's answer": (lambda req: Reply(body(signed(response_for({"request_id": "x"}), sign))), "bad_envelope"),
        "from another server": (lambda req: Reply(body(signed(response_for(req, server_id="evil"), sign))), "wrong_server"),
        "an old answer": (lambda req: Reply(body(signed(response_for(req, ts_ms=support.now_ms() - 400_000), sign))), "stale"),
        "from the future": (lambda req: Reply(body(signed(response_for(req, ts_ms=support.now_ms() + 400_000), sign))), "stale"),
        "tampered after signing": (
            lambda req: Reply(body(signed(response_for(req, result={"total": 1}), sign)).replace(b'"total": 1', b'"total": 2')),
            "bad_signature",
        ),
        "an HTML error page": (lambda req: Reply(b"<html>502 Bad Gateway</html>", status=502), "bad_envelope"),
        "an empty body": (lambda req: Reply(b""), "bad_envelope"),
        "a redirect": (lambda req: Reply(b"", status=302, headers={"Location": "http://example.com/"}), "bad_envelope"),
        "duplicate keys": (
            lambda req: Reply(
                body(signed(response_for(req, result={"total": 1}), sign)).replace(b'{"total": 1}', b'{"total": 1, "total": 9}')
            ),
            "bad_envelope",
        ),
        "a float ts_ms": (
            lambda req: Reply(
                body(signed({**response_for(req), "ts_ms": float(support.now_ms())}, sign))
            ),
            "bad_envelope",
        ),
        "NaN in the result": (
            lambda req: Reply(body(signed(response_for(req, result={"n": 1}), sign)).replace(b'"n": 1', b'"n": NaN')),
            "bad_envelope",
        ),
    }


@pytest.mark.parametrize("name", sorted(forged_cases()))
def test_forged_answers_are_never_results(fake: Any, name: str) -> None:
    handler, code = forged_cases()[name]
    server = fake(handler)
    error = local_error(code, lambda: fake_client(server).call("batch_sum", {"numbers": [1]}))
    assert isinstance(error.received, bytes)


def test_an_unsigned_404_names_the_likely_cause(fake: Any) -> None:
    server = fake(lambda req: Reply(b"Not Found", status=404))
    error = local_error("bad_envelope", lambda: fake_client(server).call("x"))
    assert "no smcp endpoint at this URL (HTTP 404)" in str(error) and error.received == b"Not Found"


def test_the_http_status_does_not_make_an_answer(fake: Any) -> None:
    # As in the TypeScript client: the signed body decides, whatever the HTTP status says.
    sign = support.Signer(secret=support.SERVER_SECRET)
    server = fake(lambda req: Reply(json.dumps(signed(response_for(req, result={"v": 1}), sign)).encode(), status=500))
    assert fake_client(server).call("x") == {"v": 1}


# ---------------------------------------------------------------- truncated, oversized, slow


def answer_of(size: int) -> Any:
    sign = support.Signer(secret=support.SERVER_SECRET)

    def handler(req: Any) -> Reply:
        message = signed(response_for(req, result={"pad": ""}), sign)
        text = json.dumps(message, separators=(",", ":")).encode()
        pad = size - len(text)
        return Reply(json.dumps(signed(response_for(req, result={"pad": "x" * pad}), sign), separators=(",", ":")).encode())

    return handler


def test_answers_up_to_the_cap_are_read_and_larger_ones_refused(fake: Any) -> None:
    server = fake(answer_of(2000))
    assert len(fake_client(server, max_response_bytes=2000).call("x")["pad"]) > 1500
    local_error("too_large", lambda: fake_client(server, max_response_bytes=1999).call("x"))


def test_a_declared_huge_answer_is_refused_without_reading_it(fake: Any) -> None:
    server = fake(lambda req: Reply(b"{", content_length=9 * 1024 * 1024))
    began = time.monotonic()
    local_error("too_large", lambda: fake_client(server).call("x"))
    assert time.monotonic() - began < 2


def test_a_streamed_answer_over_the_cap_is_cut_off(fake: Any) -> None:
    server = fake(lambda req: Reply(b"[" + b"1," * 5_000_000 + b"1]", chunked=True))
    local_error("too_large", lambda: fake_client(server).call("x"))


def test_a_truncated_answer_is_refused(fake: Any) -> None:
    sign = support.Signer(secret=support.SERVER_SECRET)

    def cut(req: Any) -> Reply:
        whole = json.dumps(signed(response_for(req, result={"total": 6.0}), sign)).encode()
        return Reply(whole[: len(whole) // 2])

    local_error("bad_envelope", lambda: fake_client(fake(cut)).call("x"))

    def lying(req: Any) -> Reply:
        whole = json.dumps(signed(response_for(req), sign)).encode()
        return Reply(whole, content_length=len(whole) + 100)  # then the connection closes

    error = local_error("unavailable", lambda: fake_client(fake(lying)).call("x"))
    assert "ended early" in str(error)


def test_a_server_that_never_answers_is_given_up_on_in_time(fake: Any) -> None:
    server = fake(lambda req: Reply(hang=True))
    began = time.monotonic()
    error = local_error("unavailable", lambda: fake_client(server, timeout=0.5).call("x"))
    assert 0.4 < time.monotonic() - began < 3
    assert "no answer within 0.5 s" in str(error)


def test_a_server_that_trickles_is_given_up_on_in_time(fake: Any) -> None:
    # One byte every 50 ms would keep a per-read timeout happy for minutes; the deadline is for the whole exchange.
    sign = support.Signer(secret=support.SERVER_SECRET)
    server = fake(lambda req: Reply(json.dumps(signed(response_for(req), sign)).encode(), trickle=0.05))
    began = time.monotonic()
    local_error("unavailable", lambda: fake_client(server, timeout=0.6).call("x"))
    assert time.monotonic() - began < 3


# ---------------------------------------------------------------- jobs on a scripted server


@pytest.fixture
def jobs_server(fake: Any) -> Any:
    made: list[Jobs] = []

    def start(**options: Any) -> tuple[Jobs, support.FakeServer]:
        jobs = Jobs(**options)
        made.append(jobs)
        return jobs, fake(jobs)

    yield start
    for jobs in made:
        jobs.stop.set()
        with jobs.changed:
            jobs.changed.notify_all()


def polls(server: support.FakeServer) -> list[support.Seen]:
    return [s for s in server.seen if s.message and s.message["tool"] == "poll_job"]


def test_plain_polling_when_long_poll_is_not_advertised(jobs_server: Any) -> None:
    # Progress shows for a second: plain polls (at most 0.65 s apart here) see some of it.
    _, server = jobs_server(script=[(0.5, {"done": 1}), (1.0, {"done": 2}), (1.5, "done")])
    seen: list[Any] = []
    result = fake_client(server).call_and_wait("start_long_task", {"payload": {"p": 1}}, on_progress=lambda p, s: seen.append(p))
    assert result == {"p": 1}
    assert all("wait_ms" not in s.message["args"] for s in polls(server))
    accepted_at = next(s.at for s in server.seen if s.message["tool"] == "start_long_task")
    assert polls(server)[0].at - accepted_at >= 0.19  # a pause before each poll
    assert {"done": 1} in seen or {"done": 2} in seen


def test_long_poll_when_advertised(jobs_server: Any) -> None:
    _, server = jobs_server(long_poll=True, script=[(0.6, "done")])
    client = fake_client(server)
    assert client.call_and_wait("start_long_task", {"payload": {"p": 2}}) == {"p": 2}
    # One poll that the server held until the job ended; plain polling would have taken three or more.
    assert len(polls(server)) == 1 and polls(server)[0].message["args"]["wait_ms"] == 20_000
    # The capability is learnt once per client.
    assert client.call_and_wait("start_long_task", {"payload": {"p": 3}}) == {"p": 3}
    assert server.tools_called().count("server_identity") == 1


def test_long_poll_reports_each_change_without_pausing(jobs_server: Any) -> None:
    _, server = jobs_server(long_poll=True)
    seen: list[Any] = []
    # A poll interval of 2 s: plain polling would pause that long before each poll.
    client = fake_client(server, poll_interval=2.0, max_poll_interval=2.0)
    client.call_and_wait("start_long_task", {}, on_progress=lambda p, s: seen.append(p))
    assert seen in ([{"done": 1}, {"done": 2}], [{"done": 1}], [{"done": 2}])
    assert len(polls(server)) == len(seen) + 1  # every answer brought a change (or the end)
    identity_at = next(s.at for s in server.seen if s.message["tool"] == "server_identity")
    assert polls(server)[0].at - identity_at < 1.0  # no pause: the server does the waiting


def test_long_poll_refused_falls_back_to_polling(jobs_server: Any) -> None:
    _, server = jobs_server(long_poll=True, refuse_wait_ms=True)
    client = fake_client(server)
    assert client.call_and_wait("start_long_task", {"payload": {"p": 4}}) == {"p": 4}
    with_wait = [s for s in polls(server) if "wait_ms" in s.message["args"]]
    assert len(with_wait) == 1 and len(polls(server)) >= 2
    client.call_and_wait("start_long_task", {})
    assert len([s for s in polls(server) if "wait_ms" in s.message["args"]]) == 1


def test_long_poll_can_be_turned_off(jobs_server: Any) -> None:
    _, server = jobs_server(long_poll=True)
    fake_client(server, long_poll_ms=0).call_and_wait("start_long_task", {})
    assert "server_identity" not in server.tools_called()
    assert all("wait_ms" not in s.message["args"] for s in polls(server))


@pytest.mark.parametrize("long_poll", [False, True])
def test_a_timeout_cancels_the_job_and_raises(jobs_server: Any, long_poll: bool) -> None:
    jobs, server = jobs_server(long_poll=long_poll, script=[(30, "done")])
    began = time.monotonic()
    error = local_error("timeout", lambda: fake_client(server).call_and_wait("start_long_task", {}, timeout=1.0))
    assert 0.9 < time.monotonic() - began < 4
    assert server.tools_called()[-1] == "cancel_job"
    assert [job["state"] for job in jobs.jobs.values()] == ["cancelled"]
    assert "stopped waiting" in str(error)
    if long_poll:
        assert all(0 < s.message["args"]["wait_ms"] <= 1000 for s in polls(server))


def test_a_timeout_can_leave_the_job_running(jobs_server: Any) -> None:
    jobs, server = jobs_server(script=[(30, "done")])
    client = fake_client(server)
    job_id = client.start("start_long_task", {})
    local_error("timeout", lambda: client.wait(job_id, timeout=0.5, cancel_on_timeout=False))
    assert "cancel_job" not in server.tools_called() and jobs.jobs[job_id]["state"] == "running"


def test_ctrl_c_while_waiting_cancels_the_job(jobs_server: Any) -> None:
    jobs, server = jobs_server(script=[(0.2, {"done": 1}), (30, "done")])

    def interrupt(progress: Any, state: str) -> None:
        if progress:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fake_client(server).call_and_wait("start_long_task", {}, on_progress=interrupt)
    assert server.tools_called()[-1] == "cancel_job"
    assert [job["state"] for job in jobs.jobs.values()] == ["cancelled"]


def test_an_error_in_on_progress_propagates_and_leaves_the_job(jobs_server: Any) -> None:
    jobs, server = jobs_server(script=[(0.2, {"done": 1}), (30, "done")])

    def broken(progress: Any, state: str) -> None:
        if progress:
            raise RuntimeError("callback bug")

    with pytest.raises(RuntimeError, match="callback bug"):
        fake_client(server).call_and_wait("start_long_task", {}, on_progress=broken)
    assert "cancel_job" not in server.tools_called()


def test_on_progress_takes_the_typescript_shape_or_the_older_two_arguments(jobs_server: Any) -> None:
    _, server = jobs_server(long_poll=True)
    three: list[tuple[Any, str, dict[str, Any]]] = []
    two: list[tuple[Any, str]] = []
    star: list[tuple[Any, ...]] = []
    client = fake_client(server)
    client.call_and_wait("start_long_task", {}, on_progress=lambda p, s, answer: three.append((p, s, answer)))
    client.call_and_wait("start_long_task", {}, on_progress=lambda p, s: two.append((p, s)))
    client.call_and_wait("start_long_task", {}, on_progress=lambda *a: star.append(a))
    assert three and two and star
    # The third argument is the whole `running` result, as the TypeScript client's onProgress gets it.
    for progress, state, answer in three:
        assert answer["progress"] == progress and answer["state"] == state == "running" and "job_id" in answer
    assert all(len(a) == 3 for a in star)


def test_a_long_poll_answered_with_nothing_new_before_half_the_wait_backs_off(fake: Any) -> None:
    # A server that holds each long poll for 30% of its wait_ms, then answers "still running", unchanged
    # (as one draining for a restart might). Before half the wait: the client pauses before asking again.
    polls_answered = 0

    def handler(req: dict[str, Any]) -> dict[str, Any]:
        nonlocal polls_answered
        if req["tool"] == "server_identity":
            caps = {"async": True, "long_poll": True}
            return response_for(req, result={"server_id": support.SERVER_ID, "fingerprint": "k", "capabilities": caps})
        if req["tool"] == "start_long_task":
            return response_for(req, status="accepted", result={"job_id": "j1"})
        assert req["tool"] == "poll_job"
        if polls_answered == 4:
            return response_for(req, status="done", result={"ok": True})
        polls_answered += 1
        threading.Event().wait(req["args"].get("wait_ms", 0) * 0.3 / 1000)  # the server holding the poll
        running = {"job_id": "j1", "state": "running", "progress": None, "version": 1}
        return response_for(req, status="running", result=running)

    server = fake(handler)
    client = fake_client(server, long_poll_ms=1_000, poll_interval=0.5, max_poll_interval=0.5)
    assert client.call_and_wait("start_long_task", {}) == {"ok": True}
    asked = [s.at for s in polls(server)]
    assert len(asked) == 5 and all(s.message["args"]["wait_ms"] == 1_000 for s in polls(server))
    # Each answer came after ~0.3 s; a pause of 0.5 s follows each one with nothing new (the first is news).
    gaps = [later - earlier for earlier, later in zip(asked, asked[1:], strict=False)]
    assert all(gap >= 0.75 for gap in gaps[1:]), gaps


def test_a_coroutine_on_progress_needs_the_async_client(jobs_server: Any) -> None:
    _, server = jobs_server()

    async def on_progress(progress: Any, state: str) -> None:
        pass

    with pytest.raises(smcp.SmcpUsageError, match="AsyncClient"):
        fake_client(server).call_and_wait("start_long_task", {}, on_progress=on_progress)


def test_rate_limited_waits_retry_after_ms(jobs_server: Any) -> None:
    jobs, server = jobs_server(script=[(0.1, "done")])
    client = fake_client(server)
    job_id = client.start("start_long_task", {"payload": {"ok": True}})
    jobs.rate_limit_next = 2
    assert client.wait(job_id) == {"ok": True}
    times = [s.at for s in server.seen if s.message["tool"] in ("poll_job", "server_identity")]
    assert len(times) >= 3
    assert times[1] - times[0] >= 0.29 and times[2] - times[1] >= 0.29  # retry_after_ms = 300


def test_rate_limited_start_is_retried_by_call_and_wait(jobs_server: Any) -> None:
    jobs, server = jobs_server(script=[(0.1, "done")])
    jobs.rate_limit_next = 1
    assert fake_client(server).call_and_wait("start_long_task", {"payload": {"x": 1}}) == {"x": 1}
    assert server.tools_called()[:2] == ["start_long_task", "start_long_task"]
    # ...but a plain call() reports it, with retry_after_ms.
    jobs.rate_limit_next = 1
    error = pytest.raises(SmcpError, fake_client(server).call, "batch_sum", {"numbers": [1]}).value
    assert (error.code, error.origin, error.retry_after_ms) == ("rate_limited", "server", 300)


def test_a_rate_limit_longer_than_the_timeout_ends_in_timeout(jobs_server: Any) -> None:
    jobs, server = jobs_server(script=[(30, "done")])
    client = fake_client(server)
    job_id = client.start("start_long_task", {})
    jobs.rate_limit_next = 100
    began = time.monotonic()
    local_error("timeout", lambda: client.wait(job_id, timeout=0.7))
    assert time.monotonic() - began < 3


# ---------------------------------------------------------------- Ed25519 (SPEC §7)


class Ed25519Peer:
    """A fake server that checks the client's Ed25519 signature with `cryptography` and signs answers."""

    def __init__(self, client_public: str) -> None:
        self.private, self.secret_text, self.public_text = support.ed25519_pair()
        self.client_key = Ed25519PublicKey.from_public_bytes(b64url_32(client_public.split(":", 1)[1], "key"))
        self.verified: list[bool] = []

    def __call__(self, req: dict[str, Any]) -> dict[str, Any]:
        payload = {k: v for k, v in req.items() if k != "signature"}
        try:
            self.client_key.verify(bytes.fromhex(req["signature"]), support.seed._canonical_json(payload))
            self.verified.append(True)
        except Exception:
            self.verified.append(False)
            return error_for(req, "bad_signature")
        return response_for(req, result={"total": 6.0, "args": req["args"]})


def test_ed25519_both_ways(fake: Any) -> None:
    _, client_secret, client_public = support.ed25519_pair()
    peer = Ed25519Peer(client_public)
    server = fake(peer, support.Signer(private=peer.private))
    client = fake_client(server, client_secret=client_secret, server_key=peer.public_text)
    result = client.call("batch_sum", {"numbers": [1, 2, 3.0], "s": "é😀"})
    assert result == {"total": 6.0, "args": {"numbers": [1, 2, 3.0], "s": "é😀"}}
    assert peer.verified == [True]
    assert len(json.loads(server.seen[0].body)["signature"]) == 128


def test_ed25519_rotation_any_pinned_key(fake: Any) -> None:
    _, client_secret, client_public = support.ed25519_pair()
    peer = Ed25519Peer(client_public)
    server = fake(peer, support.Signer(private=peer.private))
    _, _, old_public = support.ed25519_pair()
    client = fake_client(server, client_secret=client_secret, server_key=[old_public, peer.public_text])
    assert client.call("x")["total"] == 6.0


def test_an_ed25519_client_accepts_only_its_pinned_keys_signatures(fake: Any) -> None:
    _, client_secret, client_public = support.ed25519_pair()
    peer = Ed25519Peer(client_public)
    impostor, _, _ = support.ed25519_pair()
    raw_public = b64url_32(peer.public_text.split(":", 1)[1], "key")
    for signer in (
        support.Signer(private=impostor),  # another Ed25519 key
        support.Signer(secret=support.SERVER_SECRET),  # an HMAC answer
        support.Signer(secret=raw_public.decode("latin1")),  # HMAC with the public key as the secret (as text)
        support.Signer(secret=peer.public_text),
    ):
        server = fake(peer, signer)
        client = fake_client(server, client_secret=client_secret, server_key=peer.public_text)
        local_error("bad_signature", functools.partial(client.call, "x"))


def test_an_hmac_client_accepts_no_ed25519_answer(fake: Any) -> None:
    private, _, public = support.ed25519_pair()
    server = fake(lambda req: response_for(req, result={"total": 1e6}), support.Signer(private=private))
    local_error("bad_signature", lambda: fake_client(server).call("x"))


def test_ed25519_without_cryptography_names_the_fix(tmp_path: Any) -> None:
    import subprocess
    import sys

    _, secret_text, public_text = support.ed25519_pair()
    code = f"""
import sys
sys.modules["cryptography"] = None  # as if it were not installed
sys.path.insert(0, {support.REPO + "/python/src"!r})
import smcp
c = smcp.Client("http://127.0.0.1:9", client_id="a", client_secret="x" * 16, server_key="y" * 16)
assert len(c.build_envelope("t").fields["signature"]) == 64
try:
    smcp.Client("http://127.0.0.1:9", client_id="a", client_secret={secret_text!r}, server_key={public_text!r})
except smcp.SmcpUsageError as e:
    print(e)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "pip install 'smcp[ed25519]'" in out.stdout
    assert secret_text.split(":")[1] not in out.stdout


@pytest.mark.parametrize("server_key", ["hmac", "ed25519"])
def test_a_client_never_signs_with_the_algorithm_a_message_asks_for(fake: Any, server_key: str) -> None:
    # The algorithm is the configured key's: nothing in an answer changes what the next request is signed with.
    _, client_secret, client_public = support.ed25519_pair()
    peer = Ed25519Peer(client_public)
    if server_key == "hmac":
        server = fake(lambda req: {**response_for(req, result={"alg": "ed25519"})})
        client = fake_client(server)
        lengths = {64}
    else:
        server = fake(lambda req: {**response_for(req, result={"alg": "hmac-sha256"})}, support.Signer(private=peer.private))
        client = fake_client(server, client_secret=client_secret, server_key=peer.public_text)
        lengths = {128}
    client.call("x")
    client.call("x")
    assert {len(json.loads(s.body)["signature"]) for s in server.seen} == lengths


def test_the_client_sends_canonical_bytes(fake: Any) -> None:
    server = fake(lambda req: response_for(req))
    fake_client(server).call("batch_sum", {"numbers": [1.5, 2, 6.0, 1e21], "é": {"b": 1, "a": -0.0}})
    body = server.seen[0].body
    assert body == support.seed._canonical_json(json.loads(body))
    unsigned = {k: v for k, v in json.loads(body).items() if k != "signature"}
    assert json.loads(body)["signature"] == support.hmac_sign(support.CLIENT_SECRET, unsigned)


def test_concurrent_calls_from_threads(fake: Any) -> None:
    server = fake(lambda req: response_for(req, result={"n": req["args"]["n"]}))
    client = fake_client(server)
    results: dict[int, Any] = {}

    def call(n: int) -> None:
        results[n] = client.call("echo", {"n": n})["n"]

    threads = [threading.Thread(target=call, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {n: n for n in range(16)}


def test_smcp_error_is_the_one_error_type() -> None:
    assert issubclass(SmcpError, Exception) and issubclass(smcp.SmcpUsageError, ValueError)
