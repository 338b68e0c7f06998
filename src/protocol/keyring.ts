import { SmcpUsageError } from "./errors.js";
import { type Algorithm, type Key, type SecretsInput, toKeys } from "./keys.js";

/** Configuration of a server's keyring. */
export interface KeyringOptions {
  /** This server's id; envelopes for another id are `wrong_server`. */
  serverId: string;
  /**
   * The server's signing keys: HMAC secrets and/or `ed25519-secret:` keys.
   * The first signs errors sent before the client is known; otherwise each
   * client is answered with the first key of its own algorithm.
   */
  serverSecrets: SecretsInput;
  /** Per client id, the client's live keys (any verifies): HMAC secrets, or `ed25519:` public keys. */
  clients: Readonly<Record<string, SecretsInput>> | ReadonlyMap<string, SecretsInput>;
}

/** A client's record: its algorithm (fixed by its keys), its live keys, and the server key that answers it. */
export interface ClientRecord {
  readonly alg: Algorithm;
  readonly keys: readonly Key[];
  /** The server's first key of the client's algorithm. */
  readonly signer: Key;
}

const ALGORITHMS: readonly Algorithm[] = ["hmac-sha256", "ed25519"];
const GENERATE: Record<Algorithm, string> = {
  "hmac-sha256": "`smcp keygen` makes one",
  ed25519: "`smcp keygen --alg ed25519` makes one; give the server its ed25519-secret:",
};

/** The one algorithm of a list of keys, or a usage error when they mix. */
function algorithmOf(keys: readonly Key[], who: string): Algorithm {
  const alg = (keys[0] as Key).alg;
  if (keys.some((k) => k.alg !== alg)) {
    throw new SmcpUsageError(
      `${who} mixes HMAC and Ed25519 keys; a key record is one or the other (use another id for the other)`,
    );
  }
  return alg;
}

/**
 * The server's view of who may call it: its own signing keys and each
 * client's record. Lookups by message data go through a `Map`, never an
 * object, so `__proto__` or `constructor` are just unknown ids.
 */
export class Keyring {
  readonly serverId: string;
  readonly serverKeys: readonly Key[];
  readonly #clients: Map<string, ClientRecord>;
  readonly #signers: Map<Algorithm, Key>;
  readonly #serverSecrets: SecretsInput;

  constructor(options: KeyringOptions) {
    if (typeof options.serverId !== "string" || options.serverId.length === 0) {
      throw new SmcpUsageError("serverId must be a non-empty string (for example `--server-id my-server`)");
    }
    this.serverId = options.serverId;
    this.#serverSecrets = options.serverSecrets;
    this.serverKeys = Object.freeze(toKeys(options.serverSecrets, "the server"));
    this.#signers = new Map();
    this.serverKeys.forEach((key, index) => {
      if (key.alg === "ed25519" && !key.privateKey) {
        throw new SmcpUsageError(
          `the server secret #${index + 1} is a public key (ed25519:…); the server signs with its private key ed25519-secret:…`,
        );
      }
      if (!this.#signers.has(key.alg)) this.#signers.set(key.alg, key);
    });
    const entries =
      options.clients instanceof Map
        ? [...options.clients.entries()]
        : Object.entries(options.clients as Record<string, SecretsInput>);
    this.#clients = new Map();
    for (const [clientId, secrets] of entries) {
      if (clientId.length === 0) throw new SmcpUsageError("a client id is empty; give each client a non-empty id");
      const who = `client '${clientId}'`;
      const keys = toKeys(secrets, who);
      this.#clients.set(
        clientId,
        Object.freeze({ alg: algorithmOf(keys, who), keys: Object.freeze(keys), signer: this.#check(who, keys) }),
      );
    }
  }

  /** Refuses a client record that would leak a key or that the server could not answer; returns its signer. */
  #check(who: string, keys: readonly Key[]): Key {
    for (const key of keys) {
      if (key.alg === "ed25519" && key.privateKey) {
        throw new SmcpUsageError(
          `${who} is given a private key (ed25519-secret:…); give the server only the client's public key ed25519:… (\`smcp keygen --alg ed25519\` prints both)`,
        );
      }
      const shared = this.serverKeys.some((s) =>
        s.alg === "hmac-sha256"
          ? key.alg === "hmac-sha256" && s.bytes.equals(key.bytes)
          : key.alg === "ed25519" && s.public === key.public,
      );
      if (shared) {
        throw new SmcpUsageError(
          key.alg === "ed25519"
            ? `${who} uses the server's own Ed25519 key; give every client its own key pair (\`smcp keygen --alg ed25519\`)`
            : `${who} uses the server's secret; give every client its own secret`,
        );
      }
    }
    const alg = (keys[0] as Key).alg;
    const signer = this.#signers.get(alg);
    if (!signer) {
      const kind = alg === "ed25519" ? "Ed25519" : "HMAC";
      throw new SmcpUsageError(
        `${who} has an ${kind} key but the server has no ${kind} key to answer it with; add one to the server's secrets (${GENERATE[alg]})`,
      );
    }
    return signer;
  }

  /**
   * The same server (id and keys) with other clients: a registry reload
   * builds one and swaps it in whole; every client is checked as at start.
   */
  withClients(clients: KeyringOptions["clients"]): Keyring {
    return new Keyring({ serverId: this.serverId, serverSecrets: this.#serverSecrets, clients });
  }

  /** The key that signs answers sent before the client is known (the first server secret). */
  get signingKey(): Key {
    return this.serverKeys[0] as Key;
  }

  /** A client's record, or undefined for an unknown client id. */
  client(clientId: string): ClientRecord | undefined {
    return this.#clients.get(clientId);
  }

  /** The live keys of a client, or undefined for an unknown client id. */
  clientKeys(clientId: string): readonly Key[] | undefined {
    return this.#clients.get(clientId)?.keys;
  }

  /** The configured client ids. */
  clientIds(): string[] {
    return [...this.#clients.keys()];
  }

  /** The server's Ed25519 public keys, as `ed25519:` strings (`capabilities.public_keys`). */
  publicKeys(): string[] {
    return this.serverKeys.flatMap((k) => (k.alg === "ed25519" ? [k.public] : []));
  }

  /** The algorithms the server signs and verifies with (`capabilities.signatures`). */
  algorithms(): Algorithm[] {
    return ALGORITHMS.filter((alg) => this.#signers.has(alg));
  }
}

/** A caller's keys: the one it signs with and the server's, checked to be of one algorithm. */
export interface CallerKeys {
  signingKey: Key;
  serverKeys: readonly Key[];
}

/**
 * Checks a client's configuration (SPEC §7): it signs with its first key (an
 * HMAC secret or an `ed25519-secret:`), and accepts answers only in that
 * algorithm: from a pinned `ed25519:` server key, or the server's HMAC secret.
 */
export function callerKeys(options: {
  clientId: string;
  serverId: string;
  clientSecret: SecretsInput;
  serverKey: SecretsInput;
}): CallerKeys {
  const signingKey = toKeys(options.clientSecret, `client '${options.clientId}'`)[0] as Key;
  if (signingKey.alg === "ed25519" && !signingKey.privateKey) {
    throw new SmcpUsageError(
      `client '${options.clientId}' is given a public key (ed25519:…) to sign with; give it its private key ed25519-secret:…`,
    );
  }
  const who = `server '${options.serverId}'`;
  const serverKeys = toKeys(options.serverKey, who);
  if (serverKeys.some((k) => k.alg === "ed25519" && k.privateKey)) {
    throw new SmcpUsageError(
      `${who} key is a private key (ed25519-secret:…); a client pins only the server's public key ed25519:… (see its server_identity)`,
    );
  }
  const alg = algorithmOf(serverKeys, `${who} key list`);
  if (alg !== signingKey.alg) {
    throw new SmcpUsageError(
      signingKey.alg === "ed25519"
        ? `client '${options.clientId}' signs with Ed25519, so the server answers in Ed25519: give the server's public key ed25519:… as the server key`
        : `client '${options.clientId}' signs with HMAC, so the server answers in HMAC: give the server's HMAC secret as the server key, not an ed25519: key`,
    );
  }
  return { signingKey, serverKeys };
}
