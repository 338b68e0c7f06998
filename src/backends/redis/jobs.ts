import type { Cluster, Redis } from "ioredis";
import { attemptsExhaustedTemplate, CANCELLED_ERROR_TEXT, quotaExceeded } from "../../jobs/policy.js";
import { TurnBatcher } from "../../jobs/reserve-batch.js";
import {
  type ClientUsage,
  DEFAULT_JOB_RETENTION_MS,
  type JobCounts,
  type JobError,
  type JobListFilter,
  type JobOutcome,
  type JobRecord,
  type JobState,
  type JobStore,
  type JobStoreOptions,
  type NewJob,
} from "../../jobs/store.js";
import { canonicalize, type JsonObject } from "../../protocol/canonical.js";
import { parseJson } from "../../protocol/parse.js";
import { JobWatchers } from "../watchers.js";
import { readLua, type ScriptName, scripts } from "./scripts.js";

/** A single Redis or a Redis Cluster (ioredis' two clients share the commands smcp uses). */
export type RedisClient = Redis | Cluster;

// The attempts-exhausted error around its count, as the requeue script writes it (one policy: jobs/policy.ts).
const EXHAUSTED = attemptsExhaustedTemplate();

/**
 * The pub/sub channels of the Redis dispatch under a key prefix: queued tools (`q:TOOL`) and cancels (job ids).
 * The store's scripts publish on both, and either queue listens.
 */
export function redisQueueChannels(prefix: string): { queued: string; cancel: string } {
  return { queued: `${prefix}queued`, cancel: `${prefix}cancel` };
}

/** Options for {@link RedisJobStore}. */
export interface RedisJobStoreOptions extends JobStoreOptions {
  /** Prefix of every key (`{smcp}:` hash-tags them into one Redis Cluster slot). Default `smcp:`. */
  prefix?: string;
  /** Disconnect the connection on `close()` (when the store owns it). Default false. */
  closeConnection?: boolean;
  /**
   * After a job is created, `WAIT` until this many replicas of its master
   * acknowledged it (or `timeoutMs` passed), so an accepted job survives a
   * failover. Default: none (`redis+cluster://` sets one replica, 250 ms).
   */
  replicaAcks?: { replicas: number; timeoutMs: number } | undefined;
  /**
   * Publish `q:TOOL` on this channel whenever a job is queued (created or
   * requeued), in the same script, so workers claiming from the store wake
   * at once (see `RedisClaimQueue`). Default: none (BullMQ dispatches).
   */
  queuedChannel?: string | undefined;
  /**
   * Keep a queued set per tool beside the global one, so a claim for some
   * tools reads only their jobs, however many of other tools wait ahead.
   * Default true; BullMQ dispatch, which never claims, turns it off (and a
   * claim for some tools then looks at the first hundred or so queued jobs
   * only). With it on, a job started by `start(id)` or by a claim for any
   * tool stays in its tool's set until a claim of that tool or the sweep drops it.
   */
  toolQueues?: boolean;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const CLAIM = "smcp_claim";
// Candidates a turn's claims read from the head of the queue beyond the jobs they want: room for other
// processes' claims racing them.
const CLAIM_SLACK = 16;

// Passes of one turn's claims over the queue's head, at most (each takes or drops what it reads): a tool's set
// with more than about 700 stale entries ahead (jobs cancelled while queued) takes another wake, or the sweep.
const CLAIM_PASSES = 8;

/** A claim waiting for its turn's batch. */
interface PendingClaim {
  workerId: string;
  leaseUntil: number;
  tools: readonly string[] | undefined;
  /** `tools` as the script takes it: a JSON list, or '' for any. */
  toolList: string;
  resolve(job: JobRecord | undefined): void;
  reject(error: unknown): void;
}

/** A job read from a queued set: its id, and which of the claim's per-tool sets (1-based; 0: the global one). */
interface Candidate {
  id: string;
  from: number;
}
// Jobs deleted per sweep script: the script blocks Redis while it runs, so it stays short.
const SWEEP_BATCH = 200;

/**
 * Jobs in Redis, shared by every replica and worker: a hash per job, each
 * transition one Lua script (see ./scripts.ts). Every change is published,
 * so a long poll on any replica wakes as soon as a worker anywhere moves the
 * job; finished jobs are deleted by the retention sweep (a TTL a day later is
 * only the backstop), which also gives their bytes back to the client's quota.
 */
export class RedisJobStore implements JobStore {
  readonly #redis: RedisClient;
  readonly #prefix: string;
  readonly #channel: string;
  // Where the script that cancels a running job tells the worker running it (either dispatch listens).
  readonly #cancelChannel: string;
  readonly #retentionMs: number;
  readonly #now: () => number;
  readonly #closeConnection: boolean;
  readonly #replicaAcks: { replicas: number; timeoutMs: number } | undefined;
  readonly #queuedChannel: string;
  readonly #toolQueues: boolean;
  readonly #watchers = new JobWatchers();
  #subscriber: Promise<RedisClient> | undefined;

  constructor(redis: RedisClient, options: RedisJobStoreOptions = {}) {
    this.#redis = redis;
    this.#prefix = options.prefix ?? "smcp:";
    this.#channel = `${this.#prefix}changed`;
    this.#cancelChannel = redisQueueChannels(this.#prefix).cancel;
    this.#retentionMs = options.retentionMs ?? DEFAULT_JOB_RETENTION_MS;
    this.#now = options.now ?? Date.now;
    this.#closeConnection = options.closeConnection ?? false;
    this.#replicaAcks = options.replicaAcks?.replicas ? options.replicaAcks : undefined;
    this.#queuedChannel = options.queuedChannel ?? "";
    this.#toolQueues = options.toolQueues ?? true;
    for (const [name, script] of Object.entries(scripts())) {
      if (!(`smcp_${name}` in redis)) redis.defineCommand(`smcp_${name}`, { numberOfKeys: script.keys, lua: script.lua });
    }
    // Its key count varies with the candidates, so the count is passed with each call.
    if (!(CLAIM in redis)) redis.defineCommand(CLAIM, { lua: readLua("claim") });
  }

  // WAIT has no key, so a Cluster would send it anywhere: in a pipeline behind a command on the job's key,
  // it goes to the job's master. The answer is accepted either way (the job is written); how many replicas
  // acknowledged is what a failover can keep.
  async #replicated(job: string, acks: { replicas: number; timeoutMs: number }): Promise<void> {
    const results = await this.#redis.pipeline().exists(job).call("WAIT", acks.replicas, acks.timeoutMs).exec();
    const failed = results?.find(([error]) => error);
    if (failed) throw failed[0];
  }

  #key(name: string): string {
    return `${this.#prefix}${name}`;
  }

  // The queued set of one tool's jobs (the global one when per-tool sets are off: adding to it twice changes nothing).
  #toolQueue(tool: string | null | undefined): string {
    return this.#toolQueues && tool ? this.#key(`queued:${tool}`) : this.#key("queued");
  }

  // A script defined on the connection (defineCommand), called as a method of it.
  #command(name: string): (...args: (string | number)[]) => Promise<unknown> {
    const command = (this.#redis as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[name];
    if (!command) throw new Error(`script ${name} is not defined`);
    return command;
  }

  #run(name: ScriptName, keys: string[], ...args: (string | number)[]): Promise<unknown> {
    const command = this.#command(`smcp_${name}`);
    // The key count lives once, in scripts.ts; a call that passes another number is a bug here, not in Redis.
    const want = scripts()[name].keys;
    if (keys.length !== want) throw new Error(`script ${name} takes ${want} keys, given ${keys.length}`);
    return command.call(this.#redis, ...keys, ...args);
  }

  async create(input: NewJob): Promise<{ job: JobRecord; created: boolean }> {
    const job = this.#key(`job:${input.id}`);
    const idem =
      input.idempotencyKey === undefined
        ? job
        : this.#key(`idem:${lengthPrefixed(input.clientId, input.tool, input.idempotencyKey)}`);
    // The job an idempotency key names is read first (its key goes in KEYS); the script checks the key still names it.
    for (;;) {
      const named = input.idempotencyKey === undefined ? "" : ((await this.#redis.get(idem)) ?? "");
      const [status, reply] = (await this.#run(
        "create",
        [
          job,
          this.#key("queued"),
          this.#key(`client:${input.clientId}`),
          this.#key("all"),
          idem,
          this.#key("open"),
          this.#key("bytes"),
          this.#key("turn"),
          this.#key("seq"),
          this.#key("running"),
          this.#key("serving"),
          named === "" ? job : this.#key(`job:${named}`),
          this.#toolQueue(input.tool),
        ],
        this.#queuedChannel,
        input.id,
        input.clientId,
        input.tool,
        canonicalize(input.args),
        input.idempotencyKey ?? "",
        this.#now(),
        this.#retentionMs + DAY_MS,
        input.maxOpenJobs ?? "",
        input.maxStoredBytes ?? "",
        named,
        input.trace ?? "",
      )) as [number, string[] | string];
      if (status === -2) continue; // the key changed between the read and the script: read it again
      if (status === -1) throw quotaExceeded(reply === "open_jobs" ? "open_jobs" : "stored_bytes");
      const record = toRecord(fromFlat(reply as string[]));
      if (!record) throw new Error("the job store returned no job");
      if (status === 1 && this.#replicaAcks) await this.#replicated(job, this.#replicaAcks);
      return { job: record, created: status === 1 };
    }
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const job = toRecord(await this.#redis.hgetall(this.#key(`job:${id}`)));
    return job && !this.#expired(job) ? job : undefined;
  }

  async start(id: string, workerId: string, leaseUntil: number): Promise<JobRecord | undefined> {
    // Its tool's queued set keeps the id until a claim of that tool or the sweep drops it (start is BullMQ's
    // path, which keeps no per-tool sets).
    return (await this.#claimFrom([{ id, from: 0 }], [], workerId, leaseUntil, "", 1)).jobs[0];
  }

  claim(workerId: string, leaseUntil: number, tools?: readonly string[]): Promise<JobRecord | undefined> {
    const toolList = tools ? JSON.stringify(tools) : "";
    return new Promise((resolve, reject) => this.#claims.add({ workerId, leaseUntil, tools, toolList, resolve, reject }));
  }

  // The claims asked in one event-loop turn (a ClaimingJobQueue's round) share the reads of the queue's head and
  // one claim script per worker and tools, instead of a read and a script each.
  readonly #claims = new TurnBatcher<PendingClaim>((batch) => {
    const groups = new Map<string, PendingClaim[]>();
    for (const claim of batch) {
      const key = `${claim.workerId}\n${claim.toolList}`;
      const group = groups.get(key);
      if (group) group.push(claim);
      else groups.set(key, [claim]);
    }
    for (const group of groups.values()) void this.#claimGroup(group);
  }, 256);

  async #claimGroup(group: PendingClaim[]): Promise<void> {
    const { workerId, tools, toolList } = group[0] as PendingClaim;
    // The earliest lease asked for: the claims of one round ask within a millisecond or so of each other.
    const leaseUntil = Math.min(...group.map((claim) => claim.leaseUntil));
    // For some tools, their own queued sets (merged in queue order); for any tool, the global one.
    const sets = tools && this.#toolQueues ? [...new Set(tools)] : [];
    const jobs: JobRecord[] = [];
    try {
      // The head (lowest turn, then oldest) is read first, with room for other processes' claims racing these;
      // the script starts what is still queued and drops what is not, so each pass moves on. Another pass while
      // the head was full and this one took or dropped something: a bounded number, then the next wake.
      for (let pass = 0; pass < CLAIM_PASSES && jobs.length < group.length; pass++) {
        const want = group.length - jobs.length;
        const size = want + (pass === 0 ? CLAIM_SLACK : 100);
        const { candidates, full } = await this.#heads(sets, size);
        if (candidates.length === 0) break;
        const claimed = await this.#claimFrom(candidates, sets, workerId, leaseUntil, toolList, want);
        jobs.push(...claimed.jobs);
        // Without per-tool sets, a first pass that met only other tools' jobs still tries the next hundred.
        if (!full || (pass > 0 && claimed.jobs.length === 0 && claimed.dropped === 0)) break;
      }
    } catch (error) {
      // What was claimed before the failure is still handed out (it is running under this worker's lease).
      for (const [i, claim] of group.entries()) i < jobs.length ? claim.resolve(jobs[i]) : claim.reject(error);
      return;
    }
    for (const [i, claim] of group.entries()) claim.resolve(jobs[i]);
  }

  // The first `size` queued jobs: of the global set, or of the tools' own sets merged by score (the same order);
  // `full`: there were more than were read.
  async #heads(sets: string[], size: number): Promise<{ candidates: Candidate[]; full: boolean }> {
    if (sets.length === 0) {
      const ids = await this.#redis.zrange(this.#key("queued"), "0", String(size - 1));
      return { candidates: ids.map((id) => ({ id, from: 0 })), full: ids.length === size };
    }
    const read = this.#redis.pipeline();
    for (const tool of sets) read.zrange(this.#toolQueue(tool), "0", String(size - 1), "WITHSCORES");
    const heads: (Candidate & { score: number })[] = [];
    let full = false;
    for (const [s, [error, flat]] of ((await read.exec()) ?? []).entries()) {
      if (error) throw error;
      const pairs = Array.isArray(flat) ? (flat as string[]) : [];
      if (pairs.length >= 2 * size) full = true;
      for (let i = 0; i + 1 < pairs.length; i += 2)
        heads.push({ id: pairs[i] as string, from: s + 1, score: Number(pairs[i + 1]) });
    }
    heads.sort((a, b) => a.score - b.score);
    return { candidates: heads.slice(0, size).map(({ id, from }) => ({ id, from })), full: full || heads.length > size };
  }

  // Starts up to `want` candidates still queued (and of `tools`, a JSON list or '' for any), in order: lua/claim.lua.
  async #claimFrom(
    candidates: Candidate[],
    sets: string[],
    workerId: string,
    leaseUntil: number,
    tools: string,
    want: number,
  ): Promise<{ jobs: JobRecord[]; dropped: number }> {
    const keys = [
      this.#key("queued"),
      this.#key("running"),
      this.#key("serving"),
      ...sets.map((tool) => this.#toolQueue(tool)),
      ...candidates.map(({ id }) => this.#key(`job:${id}`)),
    ];
    const command = this.#command(CLAIM);
    const args = [
      workerId,
      leaseUntil,
      this.#now(),
      tools,
      want,
      sets.length,
      ...sets,
      ...candidates.flatMap(({ id, from }) => [id, from]),
    ];
    return claimReply(await command.call(this.#redis, keys.length, ...keys, ...args), want);
  }

  async heartbeat(workerId: string, ids: readonly string[], leaseUntil: number): Promise<string[]> {
    if (ids.length === 0) return [];
    // One script per job (its key in KEYS), pipelined: one round trip.
    const held = await Promise.all(
      ids.map((id) => this.#run("heartbeat", [this.#key(`job:${id}`), this.#key("running")], id, workerId, leaseUntil)),
    );
    return ids.filter((_, i) => held[i] !== 1);
  }

  async stale(now: number, limit = 100): Promise<JobRecord[]> {
    const ids = await this.#redis.zrangebyscore(this.#key("running"), "-inf", `(${now}`, "LIMIT", 0, limit);
    const jobs = await this.#many(ids);
    return jobs.filter((j) => j.state === "running" && j.leaseUntil !== null && j.leaseUntil < now);
  }

  async progress(id: string, progress: JsonObject): Promise<boolean> {
    const result = await this.#run("progress", [this.#key(`job:${id}`)], id, canonicalize(progress), this.#now(), this.#channel);
    return result === 1;
  }

  async finish(id: string, outcome: JobOutcome): Promise<boolean> {
    const result = outcome.state === "done" ? canonicalize(outcome.result) : "";
    const error = outcome.state === "error" ? canonicalize(outcome.error) : "";
    return (await this.#end(id, outcome.state, result, error)) === 1;
  }

  async cancel(id: string): Promise<JobRecord | undefined> {
    await this.#end(id, "cancelled", "", CANCELLED_ERROR_TEXT);
    return this.get(id);
  }

  #end(id: string, state: JobState, result: string, error: string): Promise<unknown> {
    const ending = [id, state, result, error, this.#now(), this.#retentionMs, this.#channel, this.#cancelChannel];
    return this.#run("finish", this.#endKeys(id), ...ending);
  }

  // The keys of the scripts that may end a job (finish, requeue), in their KEYS order.
  #endKeys(id: string): string[] {
    return [`job:${id}`, "queued", "running", "open", "bytes", "expiring"].map((name) => this.#key(name));
  }

  async requeue(id: string, maxAttempts: number, staleBefore?: number): Promise<JobState | undefined> {
    const [before, after] = EXHAUSTED;
    const args = [
      id,
      maxAttempts,
      staleBefore ?? "",
      this.#now(),
      this.#retentionMs,
      before,
      this.#channel,
      after,
      this.#queuedChannel,
    ];
    // The job's tool names its queued set: read first (a job's tool never changes). Recovery only, not the hot path.
    const tool = this.#toolQueues ? await this.#redis.hget(this.#key(`job:${id}`), "tool") : null;
    const state = (await this.#run("requeue", [...this.#endKeys(id), this.#toolQueue(tool)], ...args)) as string;
    return state === "" ? undefined : (state as JobState);
  }

  async list(filter: JobListFilter = {}): Promise<JobRecord[]> {
    const set = filter.clientId === undefined ? this.#key("all") : this.#key(`client:${filter.clientId}`);
    const limit = filter.limit ?? Number.POSITIVE_INFINITY;
    const out: JobRecord[] = [];
    // Newest first, a page at a time, so a short list of a long history reads only what it shows.
    for (let start = 0; out.length < limit; start += 200) {
      const ids = await this.#redis.zrevrange(set, start, start + 199);
      if (ids.length === 0) break;
      for (const job of await this.#many(ids)) {
        if (
          (filter.state === undefined || job.state === filter.state) &&
          (filter.tool === undefined || job.tool === filter.tool)
        ) {
          out.push(job);
        }
        if (out.length >= limit) break;
      }
    }
    return out;
  }

  async sweep(now = this.#now()): Promise<number> {
    const shared = [this.#key("expiring"), this.#key("all"), this.#key("bytes"), this.#key("open"), this.#key("turn")];
    let removed = 0;
    for (;;) {
      const ids = await this.#redis.zrangebyscore(this.#key("expiring"), "-inf", now, "LIMIT", 0, SWEEP_BATCH);
      if (ids.length === 0) return removed;
      // Each job's client and idempotency key are read first (they name keys), then one script per job deletes it.
      const read = this.#redis.pipeline();
      for (const id of ids) read.hmget(this.#key(`job:${id}`), "client_id", "idem_key", "tool");
      const owners = (await read.exec()) ?? [];
      const results = await Promise.all(
        ids.map((id, i) => {
          const [error, fields] = owners[i] ?? [null, [null, null]];
          if (error) throw error;
          const [client, idem, tool] = fields as [string | null, string | null, string | null];
          const job = this.#key(`job:${id}`);
          // The tool's queued set: a job cancelled while queued may still be in it.
          // Named whenever the tool is known, with per-tool sets or not: the store may have kept them before.
          const toolSet = tool ? this.#key(`queued:${tool}`) : this.#key("queued");
          const keys = [...shared, job, this.#key(`client:${client ?? ""}`), idem || job, toolSet];
          return this.#run("sweep", keys, id, now, this.#channel, client ?? "", idem ?? "");
        }),
      );
      removed += results.filter((r) => r === 1).length;
      if (ids.length < SWEEP_BATCH) return removed;
    }
  }

  async watch(id: string, version: number, signal: AbortSignal): Promise<void> {
    // Subscribe before reading the version, so a change between the two is not missed.
    await this.#subscribe();
    const waiting = this.#watchers.wait(id, signal);
    const current = await this.#redis.hget(this.#key(`job:${id}`), "version");
    if (current === null || Number(current) !== version) this.#watchers.notify(id);
    await waiting;
  }

  async usage(clientId: string): Promise<ClientUsage> {
    const [open, bytes] = await Promise.all([
      this.#redis.hget(this.#key("open"), clientId),
      this.#redis.hget(this.#key("bytes"), clientId),
    ]);
    return { open: Number(open ?? 0), bytes: Number(bytes ?? 0) };
  }

  /**
   * Puts every queued job in its tool's queued set (same score; one already
   * there is left as it is), for jobs queued while BullMQ dispatched or by a
   * build without per-tool sets: a claim reads only those sets. Walks the
   * queued set with ZSCAN, a page at a time, and drops entries whose job is
   * gone. A job claimed meanwhile leaves a stale entry, which the next claim
   * of its tool drops. Returns how many it added (or dropped).
   */
  async indexQueuedByTool(): Promise<number> {
    if (!this.#toolQueues) return 0;
    let added = 0;
    let cursor = "0";
    do {
      const [next, page] = await this.#redis.zscan(this.#key("queued"), cursor, "COUNT", 500);
      cursor = next;
      const ids = page.filter((_, k) => k % 2 === 0);
      if (ids.length === 0) continue;
      const read = this.#redis.pipeline();
      for (const id of ids) read.hget(this.#key(`job:${id}`), "tool");
      const tools = (await read.exec()) ?? [];
      const write = this.#redis.pipeline();
      ids.forEach((id, k) => {
        const [error, tool] = tools[k] ?? [new Error("no reply")];
        if (error) throw error;
        if (typeof tool === "string" && tool !== "") write.zadd(this.#toolQueue(tool), "NX", page[2 * k + 1] as string, id);
        // No job behind the entry (deleted by hand, or evicted): nothing could ever claim it.
        else if (tool === null) write.zrem(this.#key("queued"), id);
      });
      for (const [error, count] of (await write.exec()) ?? []) {
        if (error) throw error;
        added += Number(count);
      }
    } while (cursor !== "0");
    return added;
  }

  async counts(): Promise<JobCounts> {
    const [queued, running, finished] = await Promise.all([
      this.#redis.zcard(this.#key("queued")),
      this.#redis.zcard(this.#key("running")),
      // Live jobs only: one past its retention is gone for every reader, swept or not (as in every store).
      this.#redis.zcount(this.#key("expiring"), `(${this.#now()}`, "+inf"),
    ]);
    return { queued, running, finished };
  }

  async announce(workerId: string, tools: readonly string[], ttlMs: number): Promise<void> {
    const now = this.#now();
    const pipeline = this.#redis.pipeline();
    for (const tool of tools) {
      const key = this.#key(`offers:${tool}`);
      pipeline.zadd(key, now + ttlMs, workerId);
      pipeline.zremrangebyscore(key, "-inf", `(${now}`);
      pipeline.pexpire(key, ttlMs * 4);
    }
    for (const [error] of (await pipeline.exec()) ?? []) if (error) throw error;
  }

  async isOffered(tool: string): Promise<boolean> {
    const live = await this.#redis.zrangebyscore(this.#key(`offers:${tool}`), `(${this.#now()}`, "+inf", "LIMIT", 0, 1);
    return live.length > 0;
  }

  async close(): Promise<void> {
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    if (subscriber) (await subscriber.catch(() => undefined))?.disconnect();
    if (this.#closeConnection) this.#redis.disconnect();
  }

  // One subscriber connection per store, opened on the first long poll.
  #subscribe(): Promise<RedisClient> {
    this.#subscriber ??= (async () => {
      const subscriber: RedisClient = this.#redis.isCluster
        ? (this.#redis as Cluster).duplicate(undefined, {
            lazyConnect: true,
            enableOfflineQueue: true,
            redisOptions: { maxRetriesPerRequest: null },
          })
        : (this.#redis as Redis).duplicate({ lazyConnect: true, enableOfflineQueue: true, maxRetriesPerRequest: null });
      subscriber.on("error", () => {}); // reconnects by itself; a poll meanwhile ends at its own timeout
      subscriber.on("message", (_channel: string, id: string) => this.#watchers.notify(id));
      await subscriber.connect();
      await subscriber.subscribe(this.#channel);
      return subscriber;
    })().catch((error: unknown) => {
      this.#subscriber = undefined;
      throw error;
    });
    return this.#subscriber;
  }

  // Reads also honour the store's own clock (a job past its retention reads as gone before the sweep).
  #expired(job: JobRecord): boolean {
    return job.expiresAt !== null && job.expiresAt <= this.#now();
  }

  async #many(ids: string[]): Promise<JobRecord[]> {
    if (ids.length === 0) return [];
    const pipeline = this.#redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.#key(`job:${id}`));
    const results = (await pipeline.exec()) ?? [];
    const jobs: JobRecord[] = [];
    for (const [error, hash] of results) {
      if (error) throw error;
      const job = toRecord(hash as Record<string, string>);
      if (job && !this.#expired(job)) jobs.push(job);
    }
    return jobs;
  }
}

/**
 * What the claim script's reply says: `{dropped, job, job, ...}`. Only well-formed jobs are handed out, at
 * most `want`; one that is not stays under the claimer's lease and is requeued when it lapses. Anything else
 * (not a list, a count that is not a non-negative integer) reads as nothing started and nothing dropped.
 */
export function claimReply(reply: unknown, want: number): { jobs: JobRecord[]; dropped: number } {
  if (!Array.isArray(reply)) return { jobs: [], dropped: 0 };
  const [count, ...started] = reply as unknown[];
  const jobs: JobRecord[] = [];
  for (const flat of started) {
    if (jobs.length >= want) break;
    if (!Array.isArray(flat) || !flat.every((x) => typeof x === "string")) continue;
    try {
      const job = toRecord(fromFlat(flat));
      if (job) jobs.push(job);
    } catch {
      // A field that does not parse (args, result): not a job to run.
    }
  }
  const dropped = Number.isSafeInteger(count) && (count as number) >= 0 ? (count as number) : 0;
  return { jobs, dropped };
}

const lengthPrefixed = (...parts: string[]) => parts.map((s) => `${s.length}:${s}`).join(":");

/** HGETALL's reply as a Lua script returns it: [field, value, field, value, ...]. */
function fromFlat(flat: readonly string[]): Record<string, string> {
  const hash: Record<string, string> = Object.create(null);
  for (let i = 0; i + 1 < flat.length; i += 2) hash[flat[i] as string] = flat[i + 1] as string;
  return hash;
}

function toRecord(hash: Record<string, string>): JobRecord | undefined {
  if (hash.id === undefined || hash.state === undefined) return undefined;
  const object = (text: string | undefined) => (text === undefined || text === "" ? null : (parseJson(text) as JsonObject));
  const number = (text: string | undefined) => (text === undefined || text === "" ? null : Number(text));
  const idem = hash.idem ?? "";
  return {
    id: hash.id,
    clientId: hash.client_id ?? "",
    tool: hash.tool ?? "",
    args: object(hash.args) ?? {},
    idempotencyKey: idem === "" ? null : idem,
    state: hash.state as JobState,
    progress: object(hash.progress),
    result: object(hash.result),
    error: object(hash.error) as JobError | null,
    attempts: Number(hash.attempts ?? 0),
    workerId: hash.worker_id ?? null,
    leaseUntil: number(hash.lease_until),
    createdAt: Number(hash.created_at),
    updatedAt: Number(hash.updated_at),
    expiresAt: number(hash.expires_at),
    version: Number(hash.version ?? 1),
    turn: Number(hash.turn ?? 1),
    bytes: Number(hash.bytes ?? 0),
    trace: hash.trace || null,
  };
}
