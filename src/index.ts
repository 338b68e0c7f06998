// The public surface of smcp. Everything a user imports comes from here.

export { type CallOptions, type ClientOptions, createClient, resultOf, SmcpClient, type WaitOptions } from "./client/client.js";
export { endpointUrl, type HttpTransportOptions, httpTransport } from "./client/http.js";
export { inProcessTransport, type Transport, type TransportAnswer } from "./client/transport.js";
export { freshDemoKeys, runDemo } from "./demo.js";
export { type BullConnections, BullJobQueue, type BullJobQueueOptions } from "./jobs/bullmq.js";
export { MemoryJobStore, type MemoryJobStoreOptions } from "./jobs/memory.js";
export { PollingJobQueue, type PollingJobQueueOptions } from "./jobs/polling.js";
export { type JobQueue, LocalJobQueue } from "./jobs/queue.js";
export { RedisJobStore, type RedisJobStoreOptions } from "./jobs/redis.js";
export { DEFAULT_LEASE_MS, JobRunner, type JobRunnerOptions, recoverStaleJobs, type ToolEnvironment } from "./jobs/runner.js";
export { SqliteJobStore } from "./jobs/sqlite.js";
export type { JobListFilter, JobOutcome, JobRecord, JobState, JobStore, JobStoreOptions, NewJob } from "./jobs/store.js";
export {
  CanonicalValueError,
  canonicalize,
  type JsonObject,
  JsonSyntaxError,
  type JsonValue,
  type ParsedJson,
  type ParseLimits,
  parseJson,
  parseLossless,
} from "./protocol/canonical.js";
export { ERROR_CODES, type ErrorCode, httpStatusFor, isErrorCode, SmcpError, SmcpUsageError } from "./protocol/errors.js";
export {
  type Key,
  Keyring,
  type KeyringOptions,
  MIN_SECRET_BYTES,
  type SecretInput,
  type SecretsInput,
} from "./protocol/keyring.js";
export {
  type Envelope,
  EnvelopeSchema,
  PROTOCOL_VERSION,
  type ResponseMessage,
  ResponseSchema,
  type ResponseStatus,
} from "./protocol/messages.js";
export { isSignatureFormat, signCanonical, signMessage, verifyCanonical } from "./protocol/sign.js";
export { connectRedis, parseRedisUrl, type RedisTarget } from "./redis.js";
export { MemoryNonceStore } from "./replay/memory.js";
export { RedisNonceStore, type RedisNonceStoreOptions } from "./replay/redis.js";
export { SqliteNonceStore, type SqliteNonceStoreOptions } from "./replay/sqlite.js";
export type { NonceStore } from "./replay/store.js";
export { createServer, type ErrorContext, type HandleResult, type ServerOptions, SmcpServer } from "./server/core.js";
export {
  createFetchHandler,
  createHttpHandler,
  type HttpOptions,
  type RunningServer,
  type ServeOptions,
  serveHttp,
} from "./server/http.js";
export { type OpenedStores, type OpenStoresOptions, openStores } from "./server/stores.js";
export { createWorker, type SmcpWorker, type WorkerOptions } from "./server/worker.js";
export { batchSum, builtinTools, cancelJob, listTools, pollJob, serverIdentity, startLongTask } from "./tools/builtin.js";
export {
  defineTool,
  describeTool,
  type JobContext,
  type JobToolDefinition,
  type JobView,
  type ServerInfo,
  type SyncToolDefinition,
  type Tool,
  type ToolContext,
  type ToolDescription,
} from "./tools/define.js";
export { ToolRegistry } from "./tools/registry.js";
export { redactUrl } from "./util/redact.js";
