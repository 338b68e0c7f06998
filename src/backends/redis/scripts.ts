import { readFileSync } from "node:fs";

/**
 * The Redis stores' Lua scripts. Two take a varying number of keys, so they
 * are read with `readLua`: the replay cache's `reserve` (the batch) and the
 * job store's `claim` (the candidates). The rest are
 * the job store's, kept as `.lua` files in ./lua/ (copied
 * next to the built module by `npm run build`): every transition is one
 * script, so it is atomic across replicas and workers, and every change
 * bumps the job's `version` and publishes its id (long polls on any replica
 * wake at once). Each file opens with a comment listing its KEYS and ARGV.
 *
 * No script builds a key: every key it touches is in KEYS, so a Redis
 * Cluster can route it, and all of a job store's keys share the hash tag of
 * its prefix (one slot). Where a key depends on data (the job an
 * idempotency key names, the jobs at the head of the queue, a swept job's
 * client), the store reads it first and the script checks it is unchanged.
 */
const KEYS = {
  create: 13,
  progress: 1,
  finish: 6,
  heartbeat: 2,
  requeue: 7,
  sweep: 9,
  "registry-write": 1,
} as const;

/** A script's name. */
export type ScriptName = keyof typeof KEYS;

/** A script: how many of its arguments are keys, and its Lua text. */
export interface Script {
  keys: number;
  lua: string;
}

/** Reads ./lua/NAME.lua, relative to this module (src under tsx, dist once built). */
export function readLua(name: ScriptName | "reserve" | "claim"): string {
  return readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), "utf8");
}

/** Reads a job store script. */
export function loadScript(name: ScriptName): Script {
  return { keys: KEYS[name], lua: readLua(name) };
}

let loaded: Record<ScriptName, Script> | undefined;

/** Every script, read once. */
export function scripts(): Record<ScriptName, Script> {
  loaded ??= Object.fromEntries(Object.keys(KEYS).map((name) => [name, loadScript(name as ScriptName)])) as Record<
    ScriptName,
    Script
  >;
  return loaded;
}
