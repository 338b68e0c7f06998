// `smcp/redis`: jobs and the replay cache in Redis, jobs through BullMQ (ioredis and bullmq: optional peer dependencies).

export { connectRedis, parseRedisUrl, type RedisTarget } from "./stores/redis/connection.js";
export { RedisJobStore, type RedisJobStoreOptions } from "./stores/redis/jobs.js";
export { RedisNonceStore, type RedisNonceStoreOptions } from "./stores/redis/nonces.js";
export { openRedisStores } from "./stores/redis/open.js";
export { type BullConnections, BullJobQueue, type BullJobQueueOptions } from "./stores/redis/queue.js";
