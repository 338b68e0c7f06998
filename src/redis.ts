// `smcp/redis`: jobs and the replay cache in Redis, jobs through BullMQ or claimed from the store (`?queue=store`)
// (ioredis and bullmq: optional peer dependencies).

export { RedisClaimQueue, type RedisClaimQueueOptions } from "./backends/redis/claim-queue.js";
export { connectRedis, parseRedisUrl, type RedisDispatch, type RedisTarget } from "./backends/redis/connection.js";
export { type RedisClient, RedisJobStore, type RedisJobStoreOptions, redisQueueChannels } from "./backends/redis/jobs.js";
export { RedisNonceStore, type RedisNonceStoreOptions } from "./backends/redis/nonces.js";
export { openRedisStores } from "./backends/redis/open.js";
export { type BullConnections, BullJobQueue, type BullJobQueueOptions } from "./backends/redis/queue.js";
