import { SmcpUsageError } from "./errors.js";

/** One secret, with a public label. */
export interface Key {
  /** Public label of the key; reported as the server fingerprint. Never derived from the secret. */
  readonly kid: string;
  /** The secret's bytes (UTF-8 of a string secret). */
  readonly bytes: Buffer;
}

/** A secret as configured: text (its UTF-8 bytes are the key), bytes, or with a label. */
export type SecretInput = string | Uint8Array | { secret: string | Uint8Array; kid?: string };

/** A client's secrets: one, or several during rotation (the first signs, any verifies). */
export type SecretsInput = SecretInput | readonly SecretInput[];

/** Configuration of a server's keyring. */
export interface KeyringOptions {
  /** This server's id; envelopes for another id are `wrong_server`. */
  serverId: string;
  /** The server's signing secret(s); the first signs responses. */
  serverSecrets: SecretsInput;
  /** Per client id, the client's live secrets (any verifies). */
  clients: Readonly<Record<string, SecretsInput>> | ReadonlyMap<string, SecretsInput>;
}

/** Secrets shorter than this many bytes are refused. */
export const MIN_SECRET_BYTES = 16;

/** Turns configured secrets into keys, checking length. `who` names the owner in messages. */
export function toKeys(input: SecretsInput, who: string): Key[] {
  const list = Array.isArray(input) ? (input as readonly SecretInput[]) : [input as SecretInput];
  if (list.length === 0) throw new SmcpUsageError(`${who} has no secret; give at least one (generate one with \`smcp keygen\`)`);
  return list.map((item, index) => {
    const raw = typeof item === "string" || item instanceof Uint8Array ? item : item.secret;
    const bytes = typeof raw === "string" ? Buffer.from(raw, "utf8") : Buffer.from(raw);
    if (bytes.length < MIN_SECRET_BYTES) {
      throw new SmcpUsageError(
        `${who} secret #${index + 1} is ${bytes.length} bytes; use at least ${MIN_SECRET_BYTES} (generate one with \`smcp keygen\`)`,
      );
    }
    const kid = typeof item === "object" && !(item instanceof Uint8Array) && item.kid ? item.kid : "default";
    return Object.freeze({ kid, bytes });
  });
}

/**
 * The server's view of who may call it: its own signing keys and each
 * client's live keys. Lookups by message data go through a `Map`, never an
 * object, so `__proto__` or `constructor` are just unknown ids.
 */
export class Keyring {
  readonly serverId: string;
  readonly serverKeys: readonly Key[];
  readonly #clients: Map<string, readonly Key[]>;

  constructor(options: KeyringOptions) {
    if (typeof options.serverId !== "string" || options.serverId.length === 0) {
      throw new SmcpUsageError("serverId must be a non-empty string (for example `--server-id my-server`)");
    }
    this.serverId = options.serverId;
    this.serverKeys = Object.freeze(toKeys(options.serverSecrets, "the server"));
    const entries =
      options.clients instanceof Map
        ? [...options.clients.entries()]
        : Object.entries(options.clients as Record<string, SecretsInput>);
    this.#clients = new Map();
    for (const [clientId, secrets] of entries) {
      if (clientId.length === 0) throw new SmcpUsageError("a client id is empty; give each client a non-empty id");
      const keys = toKeys(secrets, `client '${clientId}'`);
      for (const key of keys) {
        if (this.serverKeys.some((s) => s.bytes.equals(key.bytes))) {
          throw new SmcpUsageError(`client '${clientId}' uses the server's secret; give every client its own secret`);
        }
      }
      this.#clients.set(clientId, Object.freeze(keys));
    }
  }

  /** The key that signs responses (the first server secret). */
  get signingKey(): Key {
    return this.serverKeys[0] as Key;
  }

  /** The live keys of a client, or undefined for an unknown client id. */
  clientKeys(clientId: string): readonly Key[] | undefined {
    return this.#clients.get(clientId);
  }

  /** The configured client ids. */
  clientIds(): string[] {
    return [...this.#clients.keys()];
  }
}
