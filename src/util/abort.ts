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
