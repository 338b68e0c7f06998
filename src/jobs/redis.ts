import type { Redis } from "ioredis";
import { canonicalize, type JsonObject, parseJson } from "../protocol/canonical.js";
import {
  DEFAULT_JOB_RETENTION_MS,
  type JobError,
  type JobListFilter,
  type JobOutcome,
  type JobRecord,
  type JobState,
  type JobStore,
  type JobStoreOptions,
  type NewJob,
} from "./store.js";

/** Options for {@link RedisJobStore}. */
export interface RedisJobStoreOptions extends JobStoreOptions {
  /** Prefix of every key. Default `smcp:`. */
  prefix?: string;
  /** Disconnect the connection on `close()` (when the store owns it). Default false. */
  closeConnection?: boolean;
}

// Every transition is one Lua script, so it is atomic across replicas and
// workers. A job is a hash at {prefix}job:{id}; side sets index it:
// queued (score: created), running (score: lease end), client:{id} and all
// (score: created, trimmed to retention + 1 day). Standalone Redis (scripts
// touch keys derived from ids).
const LUA = {
  create: `
local p, id, now = ARGV[1], ARGV[2], ARGV[7]
if ARGV[6] ~= '' then
  local existing = redis.call('GET', ARGV[6])
  if existing then
    local expires = redis.call('HGET', p .. 'job:' .. existing, 'expires_at')
    if redis.call('EXISTS', p .. 'job:' .. existing) == 1 and not (expires and tonumber(expires) <= tonumber(now)) then
      return {0, redis.call('HGETALL', p .. 'job:' .. existing)}
    end
  end
end
redis.call('HSET', p .. 'job:' .. id, 'id', id, 'client_id', ARGV[3], 'tool', ARGV[4], 'args', ARGV[5], 'idem_key', ARGV[6],
  'idem', ARGV[9], 'state', 'queued', 'attempts', 0, 'created_at', now, 'updated_at', now)
if ARGV[6] ~= '' then redis.call('SET', ARGV[6], id) end
redis.call('ZADD', p .. 'queued', now, id)
local horizon = tonumber(now) - tonumber(ARGV[8])
for _, set in ipairs({p .. 'client:' .. ARGV[3], p .. 'all'}) do
  redis.call('ZADD', set, now, id)
  redis.call('ZREMRANGEBYSCORE', set, '-inf', '(' .. horizon)
end
return {1, redis.call('HGETALL', p .. 'job:' .. id)}`,
  start: `
local p, id = ARGV[1], ARGV[2]
local key = p .. 'job:' .. id
if redis.call('HGET', key, 'state') ~= 'queued' then return false end
redis.call('HSET', key, 'state', 'running', 'worker_id', ARGV[3], 'lease_until', ARGV[4], 'updated_at', ARGV[5])
redis.call('HINCRBY', key, 'attempts', 1)
redis.call('ZREM', p .. 'queued', id)
redis.call('ZADD', p .. 'running', ARGV[4], id)
return redis.call('HGETALL', key)`,
  claim: `
local p = ARGV[1]
for _ = 1, 100 do
  local first = redis.call('ZRANGE', p .. 'queued', 0, 0)
  local id = first[1]
  if not id then return false end
  local key = p .. 'job:' .. id
  redis.call('ZREM', p .. 'queued', id)
  if redis.call('HGET', key, 'state') == 'queued' then
    redis.call('HSET', key, 'state', 'running', 'worker_id', ARGV[2], 'lease_until', ARGV[3], 'updated_at', ARGV[4])
    redis.call('HINCRBY', key, 'attempts', 1)
    redis.call('ZADD', p .. 'running', ARGV[3], id)
    return redis.call('HGETALL', key)
  end
end
return false`,
  progress: `
local key = ARGV[1] .. 'job:' .. ARGV[2]
if redis.call('HGET', key, 'state') ~= 'running' then return 0 end
redis.call('HSET', key, 'progress', ARGV[3], 'updated_at', ARGV[4])
return 1`,
  finish: `
local p, id = ARGV[1], ARGV[2]
local key = p .. 'job:' .. id
local state = redis.call('HGET', key, 'state')
if state ~= 'queued' and state ~= 'running' then return 0 end
redis.call('HSET', key, 'state', ARGV[3], 'updated_at', ARGV[6], 'expires_at', ARGV[6] + ARGV[7])
if ARGV[4] ~= '' then redis.call('HSET', key, 'result', ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', key, 'error', ARGV[5]) end
redis.call('HDEL', key, 'worker_id', 'lease_until')
redis.call('ZREM', p .. 'queued', id)
redis.call('ZREM', p .. 'running', id)
redis.call('PEXPIRE', key, ARGV[7])
local idem = redis.call('HGET', key, 'idem_key')
if idem and idem ~= '' then redis.call('PEXPIRE', idem, ARGV[7]) end
return 1`,
  heartbeat: `
local p, worker, lease = ARGV[1], ARGV[2], ARGV[3]
local lost = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local key = p .. 'job:' .. id
  local fields = redis.call('HMGET', key, 'state', 'worker_id')
  if fields[1] == 'running' and fields[2] == worker then
    redis.call('HSET', key, 'lease_until', lease)
    redis.call('ZADD', p .. 'running', lease, id)
  else
    lost[#lost + 1] = id
  end
end
return lost`,
  requeue: `
local p, id = ARGV[1], ARGV[2]
local key = p .. 'job:' .. id
local fields = redis.call('HMGET', key, 'state', 'lease_until', 'attempts', 'created_at')
if fields[1] ~= 'running' then return '' end
if ARGV[4] ~= '' and not (tonumber(fields[2]) and tonumber(fields[2]) < tonumber(ARGV[4])) then return '' end
redis.call('ZREM', p .. 'running', id)
redis.call('HDEL', key, 'worker_id', 'lease_until')
redis.call('HSET', key, 'updated_at', ARGV[5])
if tonumber(fields[3]) >= tonumber(ARGV[3]) then
  redis.call('HSET', key, 'state', 'error', 'error', ARGV[7], 'expires_at', ARGV[5] + ARGV[6])
  redis.call('PEXPIRE', key, ARGV[6])
  return 'error'
end
redis.call('HSET', key, 'state', 'queued')
redis.call('ZADD', p .. 'queued', fields[4], id)
return 'queued'`,
} as const;

type ScriptName = keyof typeof LUA;

const lengthPrefixed = (...parts: string[]) => parts.map((s) => `${s.length}:${s}`).join(":");

/**
 * Jobs in Redis, shared by every replica and worker. Finished jobs (and
 * their idempotency keys) expire by Redis TTL after the retention time, so
 * memory stays bounded; the index sets are trimmed as jobs are created.
 */
export class RedisJobStore implements JobStore {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #retentionMs: number;
  readonly #now: () => number;
  readonly #closeConnection: boolean;

  constructor(redis: Redis, options: RedisJobStoreOptions = {}) {
    this.#redis = redis;
    this.#prefix = options.prefix ?? "smcp:";
    this.#retentionMs = options.retentionMs ?? DEFAULT_JOB_RETENTION_MS;
    this.#now = options.now ?? Date.now;
    this.#closeConnection = options.closeConnection ?? false;
    for (const [name, lua] of Object.entries(LUA)) {
      if (!(`smcp_${name}` in redis)) redis.defineCommand(`smcp_${name}`, { numberOfKeys: 0, lua });
    }
  }

  #run(name: ScriptName, ...args: (string | number)[]): Promise<unknown> {
    const command = (this.#redis as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[`smcp_${name}`];
    if (!command) throw new Error(`script ${name} is not defined`);
    return command.call(this.#redis, this.#prefix, ...args);
  }

  async create(input: NewJob): Promise<{ job: JobRecord; created: boolean }> {
    const idem =
      input.idempotencyKey === undefined
        ? ""
        : `${this.#prefix}idem:${lengthPrefixed(input.clientId, input.tool, input.idempotencyKey)}`;
    const day = 24 * 60 * 60 * 1000;
    const [created, flat] = (await this.#run(
      "create",
      input.id,
      input.clientId,
      input.tool,
      canonicalize(input.args),
      idem,
      this.#now(),
      this.#retentionMs + day,
      input.idempotencyKey ?? "",
    )) as [number, string[]];
    const job = toRecord(fromFlat(flat));
    if (!job) throw new Error("the job store returned no job");
    return { job, created: created === 1 };
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const job = toRecord(await this.#redis.hgetall(`${this.#prefix}job:${id}`));
    return job && !this.#expired(job) ? job : undefined;
  }

  async start(id: string, workerId: string, leaseUntil: number): Promise<JobRecord | undefined> {
    const flat = (await this.#run("start", id, workerId, leaseUntil, this.#now())) as string[] | null;
    return flat ? toRecord(fromFlat(flat)) : undefined;
  }

  async claim(workerId: string, leaseUntil: number): Promise<JobRecord | undefined> {
    const flat = (await this.#run("claim", workerId, leaseUntil, this.#now())) as string[] | null;
    return flat ? toRecord(fromFlat(flat)) : undefined;
  }

  async heartbeat(workerId: string, ids: readonly string[], leaseUntil: number): Promise<string[]> {
    if (ids.length === 0) return [];
    return (await this.#run("heartbeat", workerId, leaseUntil, ...ids)) as string[];
  }

  async stale(now: number, limit = 100): Promise<JobRecord[]> {
    const ids = await this.#redis.zrangebyscore(`${this.#prefix}running`, "-inf", `(${now}`, "LIMIT", 0, limit);
    const jobs = await this.#many(ids);
    return jobs.filter((j) => j.state === "running" && j.leaseUntil !== null && j.leaseUntil < now);
  }

  async progress(id: string, progress: JsonObject): Promise<boolean> {
    return (await this.#run("progress", id, canonicalize(progress), this.#now())) === 1;
  }

  async finish(id: string, outcome: JobOutcome): Promise<boolean> {
    const result = outcome.state === "done" ? canonicalize(outcome.result) : "";
    const error = outcome.state === "error" ? canonicalize(outcome.error) : "";
    return (await this.#run("finish", id, outcome.state, result, error, this.#now(), this.#retentionMs)) === 1;
  }

  async cancel(id: string): Promise<JobRecord | undefined> {
    await this.#run(
      "finish",
      id,
      "cancelled",
      "",
      canonicalize({ code: "cancelled", message: "cancelled" }),
      this.#now(),
      this.#retentionMs,
    );
    return this.get(id);
  }

  async requeue(id: string, maxAttempts: number, staleBefore?: number): Promise<JobState | undefined> {
    const error = canonicalize({ code: "tool_failed", message: "the worker stopped during each of its attempts" });
    const state = (await this.#run(
      "requeue",
      id,
      maxAttempts,
      staleBefore ?? "",
      this.#now(),
      this.#retentionMs,
      error,
    )) as string;
    return state === "" ? undefined : (state as JobState);
  }

  async list(filter: JobListFilter = {}): Promise<JobRecord[]> {
    const set = filter.clientId === undefined ? `${this.#prefix}all` : `${this.#prefix}client:${filter.clientId}`;
    const ids = await this.#redis.zrevrange(set, 0, -1);
    const jobs = await this.#many(ids);
    const matching = jobs.filter((j) => filter.state === undefined || j.state === filter.state);
    return filter.limit === undefined ? matching : matching.slice(0, filter.limit);
  }

  /** Redis expires finished jobs itself; this drops index entries of jobs already gone. */
  async sweep(): Promise<number> {
    const set = `${this.#prefix}all`;
    const ids = await this.#redis.zrange(set, "0", "-1");
    const pipeline = this.#redis.pipeline();
    for (const id of ids) pipeline.exists(`${this.#prefix}job:${id}`);
    const exists = (await pipeline.exec()) ?? [];
    const gone = ids.filter((_, i) => exists[i]?.[1] === 0);
    if (gone.length > 0) await this.#redis.zrem(set, ...gone);
    return gone.length;
  }

  async close(): Promise<void> {
    if (this.#closeConnection) this.#redis.disconnect();
  }

  // Redis drops a finished job by TTL; reads also honour the store's own clock.
  #expired(job: JobRecord): boolean {
    return job.expiresAt !== null && job.expiresAt <= this.#now();
  }

  async #many(ids: string[]): Promise<JobRecord[]> {
    if (ids.length === 0) return [];
    const pipeline = this.#redis.pipeline();
    for (const id of ids) pipeline.hgetall(`${this.#prefix}job:${id}`);
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
  };
}
