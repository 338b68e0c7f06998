import { LinkedList, type ListLinks } from "./list.js";

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Settles with `work`, or rejects with the signal's reason as soon as it
 * aborts (the work itself goes on); the listener is removed either way.
 * `settled` is called when the work itself settles, even after an abort won.
 */
export function raceAbort<T>(work: PromiseLike<T>, signal: AbortSignal, settled?: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        settled?.();
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        settled?.();
        reject(error);
      },
    );
  });
}

/** A controller that follows a longer-lived signal until `unlink` ({@link followAbort}). */
export interface FollowedAbort {
  controller: AbortController;
  /** Stops following the parent: call it once the work the controller stands for is over. */
  unlink: () => void;
}

/** A follower in its parent's list. */
interface Follower extends ListLinks<Follower> {
  controller: AbortController;
}

/** Every follower of a parent signal, behind the parent's one listener. */
const fanOuts = new WeakMap<AbortSignal, LinkedList<Follower>>();

function followersOf(parent: AbortSignal): LinkedList<Follower> {
  const known = fanOuts.get(parent);
  if (known) return known;
  const created = new LinkedList<Follower>();
  fanOuts.set(parent, created);
  parent.addEventListener(
    "abort",
    () => {
      for (const follower of created.drain()) follower.controller.abort(parent.reason);
    },
    { once: true },
  );
  return created;
}

/**
 * A controller that aborts when `parent` does (with its reason), for work that also has an end of its own (a
 * timeout); `unlink` once the work is over. In place of `AbortSignal.any([parent, own])`, which on Node 20 adds
 * a WeakRef to `parent`'s own set per call and never removes it, so a server's shutdown signal or a caller's
 * app-wide signal grew by one entry per call for as long as it lived (400,000 held after 400,000 calls). And
 * not a listener per call either: `parent` gets one listener for all its followers (no listener-count warning
 * at ten calls in flight, no listener list walked per call, and no per-call add and delete on the listener
 * Map, which V8 reallocates in its old generation once the Map is old), and a follower is linked and unlinked
 * in O(1).
 */
export function followAbort(parent: AbortSignal): FollowedAbort {
  const controller = new AbortController();
  if (parent.aborted) {
    controller.abort(parent.reason);
    return { controller, unlink: () => {} };
  }
  const followers = followersOf(parent);
  const follower: Follower = { controller, prev: undefined, next: undefined, linked: false };
  followers.push(follower);
  const unlink = () => followers.remove(follower);
  return { controller, unlink };
}
