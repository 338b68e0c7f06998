import type { Json } from "../api.js";

/** `1500` → `1s`, `125000` → `2m 5s`, `7300000` → `2h 1m`. */
export function age(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d`;
}

/** A duration in ms, to a readable precision. */
export function ms(value: number): string {
  if (value < 10) return `${value.toFixed(1)} ms`;
  if (value < 1000) return `${Math.round(value)} ms`;
  return `${(value / 1000).toFixed(2)} s`;
}

/** A clock time, local, with seconds. */
export function clock(at: number): string {
  return new Date(at).toLocaleTimeString([], { hour12: false });
}

/** JSON for people. */
export function pretty(value: Json | undefined): string {
  return JSON.stringify(value ?? null, null, 2);
}

/** `{done, total}` progress as a fraction 0..1, or undefined for any other shape. */
export function fraction(progress: Json): number | undefined {
  if (progress === null || typeof progress !== "object" || Array.isArray(progress)) return undefined;
  const { done, total } = progress;
  if (typeof done !== "number" || typeof total !== "number" || total <= 0) return undefined;
  return Math.min(1, Math.max(0, done / total));
}

/** Progress in words: `3 / 5`, or its message, or the JSON. */
export function progressText(progress: Json): string {
  if (progress === null) return "";
  if (typeof progress === "object" && !Array.isArray(progress)) {
    if (typeof progress.done === "number" && typeof progress.total === "number") return `${progress.done} / ${progress.total}`;
    if (typeof progress.message === "string") return progress.message;
  }
  return JSON.stringify(progress);
}

/** A long id shortened for a table (the full one in its title and link). */
export function shortId(id: string): string {
  return id.length > 13 ? `${id.slice(0, 8)}…${id.slice(-4)}` : id;
}
