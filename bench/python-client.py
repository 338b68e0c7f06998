"""Client side, Python (issue 22, item 6): the smcp Python client's calls/s against a minimal urllib loop
that signs with the seed's own code (_canonical_json + _hmac_hex, /work/shared/seeds/002_*), against one
running `smcp serve` with the bench keys. Both open a connection per call (the client sends Connection:
close; urllib does too). Rounds interleave the two; medians of calls/s and of CPU per call.

    PYTHONPATH=python/src python3 bench/python-client.py URL [calls per block] [rounds]
"""

import hashlib
import hmac
import json
import statistics
import sys
import time
import urllib.request
import uuid

from smcp import Client

URL = sys.argv[1]
CALLS = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 5
CLIENT_SECRET = "bench-client-secret-0123456789"
SERVER_SECRET = "bench-server-secret-0123456789"
NUMBERS = [1.5, 2.25, 3, 4.75, 5, 6.5, 7, 8.125, 9, 10]


# The seed's helpers, as written there.
def _now_ms():
    return int(time.time() * 1000)


def _uuid():
    return str(uuid.uuid4())


def _canonical_json(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def _hmac_hex(secret, payload):
    return hmac.new(secret, _canonical_json(payload), hashlib.sha256).hexdigest()


def seed_call():
    env = {
        "v": "mcp/0.1",
        "request_id": _uuid(),
        "ts_ms": _now_ms(),
        "client_id": "bench",
        "server_id": "bench",
        "tool": "batch_sum",
        "args": {"numbers": NUMBERS},
        "nonce": _uuid(),
    }
    env["signature"] = _hmac_hex(CLIENT_SECRET.encode(), env)
    req = urllib.request.Request(URL, data=_canonical_json(env), headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as response:
        answer = json.loads(response.read())
    if not answer["ok"]:
        raise RuntimeError(answer)


client = Client(URL, client_id="bench", client_secret=CLIENT_SECRET, server_id="bench", server_key=SERVER_SECRET)


def client_call():
    result = client.call("batch_sum", {"numbers": NUMBERS})
    if result["count"] != len(NUMBERS):
        raise RuntimeError(result)


WAYS = {"smcp Python client, call()": client_call, "urllib loop, the seed's signing": seed_call}
results = {name: ([], []) for name in WAYS}
for run in WAYS.values():
    for _ in range(CALLS // 5):
        run()
for _ in range(ROUNDS):
    for name, run in WAYS.items():
        cpu, start = time.process_time(), time.perf_counter()
        for _ in range(CALLS):
            run()
        elapsed, used = time.perf_counter() - start, time.process_time() - cpu
        results[name][0].append(CALLS / elapsed)
        results[name][1].append(used / CALLS * 1e6)

base_rate = statistics.median(results["urllib loop, the seed's signing"][0])
base_cpu = statistics.median(results["urllib loop, the seed's signing"][1])
print(f"\nPython client side: {ROUNDS} rounds x {CALLS} calls per way, interleaved; Python {sys.version.split()[0]}\n")
print("| way | calls/s | CPU µs/call | calls/s vs urllib loop | CPU per call vs urllib loop |")
print("|---|---:|---:|---:|---:|")
for name, (rates, cpus) in results.items():
    rate, cpu = statistics.median(rates), statistics.median(cpus)
    print(f"| {name} | {rate:.0f} | {cpu:.0f} | {rate / base_rate:.2f}x | {cpu / base_cpu:.2f}x |")
