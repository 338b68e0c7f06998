import type { Redis } from "ioredis";
import { type NonceStore, type NonceStoreStats, nonceKey, sha256, sha256Base64url } from "../../jobs/nonces.js";
import { type PendingReservation, ReservationBatcher } from "../../jobs/reserve-batch.js";
import { SmcpError, SmcpUsageError } from "../../protocol/errors.js";
import { NonceCount } from "../nonce-count.js";
import { readLua } from "./scripts.js";

/** Options for {@link RedisNonceStore}. */
export interface RedisNonceStoreOptions {
  /** Prefix of every key. Default `smcp:`. */
  prefix?: string;
  /** Disconnect the connection on `close()` (when the store owns it). Default false. */
  closeConnection?: boolean;
  /** How often the server's eviction policy is checked again, ms. Default 60,000. */
  policyCheckEveryMs?: number;
  now?: () => number;
}

/** Client tags remembered at most (client ids come from the keyring, so few; the bound is for safety). */
const MAX_TAGS = 10_000;
/** Reservations sent in one script call at most (a turn's worth at full load is a few hundred). */
const MAX_GROUP = 1024;
/** The name the reservation script is defined under on a connection. */
const RESERVE = "smcp_reserve";

type ReserveCommand = (...args: (string | number)[]) => Promise<unknown>;
/**
 * A Cluster slot being moved: a call of several keys is refused with ASK or TRYAGAIN, which ioredis follows
 * until `maxRedirections`, then reports with the last one. That may be a MOVED too: ioredis retries TRYAGAIN
 * on the importing node without ASKING, which sends it back to the old one (seen in CI). Any other last
 * error (CLUSTERDOWN, a closed connection, OOM) fails the batch closed as it is.
 */
const MIGRATING = /^(TRYAGAIN|ASK)\b|^Too many Cluster redirections\. Last error: (ReplyError: )?(TRYAGAIN|ASK|MOVED)\b/;

/**
 * Replay cache in Redis, shared by every replica: one `SET key 1 PX ttl NX`
 * per request, atomic across replicas, expiring by itself when the envelope
 * could no longer be fresh. The SETs of one event-loop turn go to Redis as
 * one call of `lua/reserve.lua` (one round trip per turn, as the SQL stores'
 * group commit; on a Cluster, one call per client tag, since a call's keys
 * must share a slot). Each SET answers only its own request.
 *
 * Keys have a fixed length and carry neither the client id nor the nonce:
 * `{prefix}nonce:{<tag>}:<digest>`, where the tag is 48 bits of SHA-256 of
 * the client id (a Redis Cluster hash tag: one client's nonces share a
 * slot, clients spread over the shards) and the digest is 132 bits of
 * SHA-256 of the pair (collisions: see `nonceDigest`). The value `1`
 * is one of Redis's shared integers, so a key costs its name, its entries
 * in the key and expiry tables, and nothing more.
 *
 * Fail closed: with the connection down or Redis out of memory
 * (`maxmemory` under `noeviction`), `reserve` throws and the server answers
 * `unavailable`. A Redis that may evict keys (`maxmemory` set with any
 * other policy) could forget a nonce before it expires, so reservations are
 * refused (with an error naming the fix) until its policy is `noeviction`.
 */
export class RedisNonceStore implements NonceStore {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #now: () => number;
  readonly #closeConnection: boolean;
  readonly #policyCheckEveryMs: number;
  readonly #tags = new Map<string, string>();
  readonly #count = new NonceCount();
  /** The last policy check: resolves to the refusal to raise, or undefined when Redis keeps every key until it expires. */
  #policy: Promise<Error | undefined> | undefined;
  /** The check now in `#policy` found nothing to refuse (Redis keeps every key, or INFO is not ours): reservations need not wait for it. */
  #policyOk = false;
  #policyCheckedAt = 0;
  /** `used_memory` and `maxmemory` at the last policy check. */
  #memory: { used: number; max: number } | undefined;
  /** Where a key's client tag starts: after `{prefix}nonce:{`. */
  readonly #tagAt: number;
  readonly #inFlight = new Set<Promise<void>>();
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(redis: Redis, options: RedisNonceStoreOptions = {}) {
    this.#redis = redis;
    this.#prefix = options.prefix ?? "smcp:";
    this.#now = options.now ?? Date.now;
    this.#closeConnection = options.closeConnection ?? false;
    this.#policyCheckEveryMs = options.policyCheckEveryMs ?? 60_000;
    this.#tagAt = this.#prefix.length + "nonce:{".length;
    if (!(RESERVE in redis)) redis.defineCommand(RESERVE, { lua: readLua("reserve") });
  }

  reserve(clientId: string, nonce: string, expiresAt: number): Promise<boolean> {
    if (this.#closed) return Promise.reject(new Error("the Redis replay cache is closed"));
    if (!Number.isFinite(expiresAt)) return Promise.reject(new SmcpUsageError("expiresAt must be a finite time in ms"));
    // The common case, every request between two checks: the last reading is fresh and found nothing to refuse,
    // so the reservation joins this turn's batch without waiting a turn of promises for it.
    if (this.#policyOk && this.#now() - this.#policyCheckedAt < this.#policyCheckEveryMs) {
      return this.#batcher.add(clientId, nonce, expiresAt);
    }
    return this.#reserveChecked(clientId, nonce, expiresAt);
  }

  async #reserveChecked(clientId: string, nonce: string, expiresAt: number): Promise<boolean> {
    const refusal = await this.#checkPolicy();
    if (refusal) throw refusal;
    // Closed while the policy was read: close() has drained the batch already, so nothing would send this one.
    if (this.#closed) throw new Error("the Redis replay cache is closed");
    return this.#batcher.add(clientId, nonce, expiresAt);
  }

  readonly #send = (batch: PendingReservation<string>[]): void => {
    // One Redis has no slots: one call. A Cluster call's keys must share a slot; one client's keys share its tag.
    if (!this.#redis.isCluster) {
      this.#track(this.#commit(batch));
      return;
    }
    const byTag = new Map<string, PendingReservation<string>[]>();
    for (const p of batch) {
      const tag = p.key.slice(this.#tagAt, this.#tagAt + 8);
      const group = byTag.get(tag);
      if (group) group.push(p);
      else byTag.set(tag, [p]);
    }
    for (const group of byTag.values()) this.#track(this.#commit(group));
  };
  readonly #batcher = new ReservationBatcher<string>(this.#send, (clientId, nonce) => this.key(clientId, nonce), MAX_GROUP);

  #track(sent: Promise<void>): void {
    this.#inFlight.add(sent);
    void sent.finally(() => this.#inFlight.delete(sent));
  }

  async #commit(batch: PendingReservation<string>[]): Promise<void> {
    const now = this.#now();
    const args: (string | number)[] = new Array(1 + 2 * batch.length);
    args[0] = batch.length;
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i] as PendingReservation<string>;
      args[1 + i] = p.key;
      // The expiry is absolute: a reservation sent later in the turn lives as long, ending at the same moment.
      args[1 + batch.length + i] = Math.max(1, Math.ceil(p.expiresAt - now));
    }
    let results: unknown;
    try {
      results = await (this.#redis as unknown as Record<string, ReserveCommand>)[RESERVE]?.(...args);
    } catch (error) {
      // A Cluster moving this slot refuses a call of several keys (ASK when none is on the old node, TRYAGAIN
      // when some are) until the move ends; a call of one key follows ASK. Each SET NX is atomic alone, so the
      // group is sent again one key per call.
      if (batch.length > 1 && this.#redis.isCluster && MIGRATING.test((error as Error)?.message ?? "")) {
        await Promise.all(batch.map((p) => this.#commit([p])));
        return;
      }
      const failure = refusal(error);
      for (const p of batch) p.reject(failure);
      return;
    }
    const answers = reserveAnswers(results, batch.length);
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i] as PendingReservation<string>;
      const answer = answers[i];
      if (answer === true) this.#count.add(p.expiresAt, now);
      if (typeof answer === "boolean") p.resolve(answer);
      else p.reject(refusal(answer));
    }
  }

  /** The key a pair is held under (fixed length for a given prefix). */
  key(clientId: string, nonce: string): string {
    let tag = this.#tags.get(clientId);
    if (tag === undefined) {
      if (this.#tags.size >= MAX_TAGS) this.#tags.clear();
      tag = sha256(clientId).toString("base64url").slice(0, 8);
      this.#tags.set(clientId, tag);
    }
    return `${this.#prefix}nonce:{${tag}}:${sha256Base64url(nonceKey(clientId, nonce)).slice(0, 22)}`;
  }

  stats(): NonceStoreStats {
    // The memory figures come from the policy check's INFO; a stale one is refreshed for the next call.
    if (this.#now() - this.#policyCheckedAt >= this.#policyCheckEveryMs) void this.#checkPolicy();
    const memory = this.#memory;
    return {
      held: this.#count.held(this.#now()),
      ...(memory ? { bytes: memory.used } : {}),
      ...(memory && memory.max > 0 ? { capacityBytes: memory.max } : {}),
    };
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    // Reservations already taken are sent, and answered, before the connection goes.
    this.#batcher.drain();
    await Promise.allSettled([...this.#inFlight]);
    if (this.#closeConnection) this.#redis.disconnect();
  }

  /** Checks (at most every `policyCheckEveryMs`, one request waiting for it) that Redis never evicts keys early. */
  #checkPolicy(): Promise<Error | undefined> {
    const now = this.#now();
    if (this.#policy && now - this.#policyCheckedAt < this.#policyCheckEveryMs) return this.#policy;
    this.#policyCheckedAt = now;
    this.#policyOk = false;
    const check: Promise<Error | undefined> = this.#redis.info("memory").then(
      (text) => {
        const memory = parseInfo(text);
        const policy = memory.get("maxmemory_policy") ?? "noeviction";
        const max = Number(memory.get("maxmemory") ?? 0);
        this.#memory = { used: Number(memory.get("used_memory") ?? 0), max };
        if (max === 0 || policy === "noeviction") {
          // Only the latest check's answer counts (an older one answering late says nothing of now).
          if (this.#policy === check) this.#policyOk = true;
          return undefined;
        }
        return new Error(
          `Redis may evict replay-cache keys before they expire (maxmemory set, maxmemory-policy ${policy}): set maxmemory-policy noeviction`,
        );
      },
      (error: unknown) => {
        // INFO refused (an ACL without it): the policy cannot be checked; it is the operator's to set.
        if (/NOPERM|unknown command/i.test((error as Error).message ?? "")) {
          if (this.#policy === check) this.#policyOk = true;
          return undefined;
        }
        // Unreachable: this request fails as its SET would; the next one checks again (unless a newer check began).
        if (this.#policy === check) this.#policy = undefined;
        return error as Error;
      },
    );
    this.#policy = check;
    return check;
  }
}

/**
 * What the reserve script's reply says of each of `count` reservations: true (fresh: only the integer 1),
 * false (held: only 0), or the error to fail it with (Redis refused that SET: its error text; anything
 * else). A reply that is not an array of exactly `count` entries is believed for none.
 */
export function reserveAnswers(reply: unknown, count: number): (boolean | Error)[] {
  if (!Array.isArray(reply) || reply.length !== count) {
    return new Array(count).fill(new Error("the replay cache's answer does not match its reservations"));
  }
  return reply.map((entry: unknown) =>
    entry === 1 ? true : entry === 0 ? false : new Error(typeof entry === "string" ? entry : "the replay cache gave no answer"),
  );
}

/** A full replay cache (Redis out of memory under `noeviction`) is `unavailable`; any other error as it is. */
function refusal(error: unknown): unknown {
  if (/^OOM\b/.test((error as Error)?.message ?? "")) {
    return new SmcpError("unavailable", "the replay cache is full; retry later");
  }
  return error;
}

/** `INFO` text as name → value. */
function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0 && !line.startsWith("#")) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}
