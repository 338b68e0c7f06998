/**
 * Generative tests of the CLI's readers of outside text (issue #8):
 * `smcp call TOOL ARGS_JSON` and the keyring file. Run in a worker
 * (test/fuzz/targets/cli.ts) so a hang is a reported failure; Python's
 * verdict on each text (json.loads within SPEC §2's limits) says what the
 * answer must be. Neither ever echoes the text nor a secret.
 */
import assert from "node:assert/strict";
import { isUtf8 } from "node:buffer";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { marker } from "./fuzz/envelopes.js";
import { anyDocument, jsString, wellFormedValue } from "./fuzz/json.js";
import { byteMutations, mutateBytes, mutateUnits, unitMutations } from "./fuzz/mutate.js";
import { PythonOracle } from "./fuzz/oracle.js";
import { runProperty } from "./fuzz/run.js";
import { Sandbox } from "./fuzz/sandbox.js";
import type { CliRun, KeyringRead } from "./fuzz/targets/cli.js";
import { CLIENT_SECRET, SERVER_SECRET } from "./helpers.js";

const sandbox = new Sandbox(new URL("./fuzz/targets/cli.ts", import.meta.url));
const oracle = new PythonOracle();
before(async () => {
  await Promise.all([sandbox.ready(), oracle.parse([])]);
});
after(async () => {
  await Promise.all([sandbox.close(), oracle.close()]);
});

const DEADLINE_MS = 15_000;

describe("smcp call ARGS_JSON: generative (issue #8)", () => {
  // Objects with a marker in a key and a value, then mutated: valid and invalid JSON of every kind.
  const argsText = marker.chain((m) =>
    fc.oneof(
      fc
        .dictionary(
          fc.oneof(
            fc.constant(m),
            jsString.filter((k) => k.isWellFormed()),
          ),
          fc.oneof(fc.constant<unknown>(m), wellFormedValue),
          { maxKeys: 4 },
        )
        .map((o) => ({ text: JSON.stringify(o, (_k, v: unknown) => (typeof v === "bigint" ? Number(v) : v)), m })),
      fc.tuple(anyDocument, unitMutations).map(([text, mutations]) => ({ text: mutateUnits(`{"${m}":${text}}`, mutations), m })),
      anyDocument.map((text) => ({ text, m })),
    ),
  );

  it("valid JSON objects go on to the call, anything else is a usage error naming ARGS_JSON; the text is never echoed", async (t) => {
    await runProperty(
      t,
      argsText,
      async ({ text, m }) => {
        const run = await sandbox.call<CliRun>("argsJson", text, DEADLINE_MS);
        const [verdict] = await oracle.parse([text]);
        const shown = `${JSON.stringify(text).slice(0, 300)} -> ${JSON.stringify(run).slice(0, 400)}`;
        assert.equal(run.exit, 2, shown);
        if (!verdict || verdict[0] === "error") {
          assert.match(run.stderr, /^smcp: ARGS_JSON is not valid JSON \(/, shown);
        } else if (!verdict[1].startsWith("{")) {
          assert.match(run.stderr, /^smcp: ARGS_JSON must be a JSON object/, shown);
        } else {
          // Accepted: the call went out and found nobody listening.
          assert.doesNotMatch(run.stderr, /ARGS_JSON/, shown);
          assert.match(run.stderr, /127\.0\.0\.1:1/, shown);
        }
        const output = run.stdout + run.stderr;
        assert.ok(!output.includes(m), `the text is echoed: ${shown}`);
        if (text.length >= 16) assert.ok(!output.includes(text), `the text is echoed: ${shown}`);
      },
      { runs: 150, seconds: 2 },
    );
  });
});

describe("keyring file: generative (issue #8)", () => {
  const secret = fc.stringMatching(/^[A-Za-z0-9_-]{24,43}$/);
  const keyringFile = fc
    .record({
      server_id: fc.oneof(fc.constant("smcp-local"), fc.string({ minLength: 1, maxLength: 12 })),
      server_secret: secret,
      clients: fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), secret, { minKeys: 1, maxKeys: 3 }),
      url: fc.option(fc.constant("http://127.0.0.1:8787/mcp"), { nil: undefined }),
      store: fc.option(fc.constant("sqlite:.smcp/jobs.db"), { nil: undefined }),
    })
    .map((file) => ({ file, text: `${JSON.stringify(file, null, 2)}\n` }));

  it("a valid file reads back; a broken one is a usage error (never a crash, a hang or a secret in the message)", async (t) => {
    await runProperty(
      t,
      fc.tuple(keyringFile, fc.oneof(fc.constant([]), byteMutations), fc.option(anyDocument, { freq: 5, nil: undefined })),
      async ([{ file, text }, mutations, random]) => {
        const bytes = random !== undefined ? Buffer.from(random) : mutateBytes(text, mutations);
        const outcome = await sandbox.call<KeyringRead>("keyring", bytes, DEADLINE_MS);
        const shown = `${JSON.stringify(Buffer.from(bytes).toString("utf8")).slice(0, 300)} -> ${JSON.stringify(outcome)}`;
        const secrets = [file.server_secret, ...Object.values(file.clients), SERVER_SECRET, CLIENT_SECRET];
        if (!outcome.read.ok) {
          assert.equal(outcome.read.name, "SmcpUsageError", shown);
          for (const s of secrets) assert.ok(!outcome.read.message.includes(s), `a secret in the message: ${shown}`);
        }
        const verdict = isUtf8(bytes) ? (await oracle.parse([Buffer.from(bytes).toString("utf8")]))[0] : undefined;
        if (!verdict || verdict[0] === "error") {
          assert.ok(!outcome.read.ok && /is not valid JSON/.test(outcome.read.message), shown);
        } else if (random === undefined && mutations.length === 0) {
          assert.ok(outcome.read.ok, shown);
          assert.equal(outcome.read.serverId, file.server_id);
          assert.deepEqual(outcome.read.clients, Object.keys(file.clients));
        }
      },
      { runs: 150, seconds: 2 },
    );
  });
});
