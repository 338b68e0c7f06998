/**
 * The page's only way out: the console's own JSON API, same origin. The token
 * (from this page's URL) goes in a header, never into a link another site
 * could read; the page holds no key.
 */

/** This page's token, from its URL (`?token=`). */
export const TOKEN = new URLSearchParams(location.search).get("token") ?? "";

/** An API failure the page shows as it is (the console refused or failed, not the smcp server). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function answer<T>(response: Response): Promise<T> {
  const text = await response.text();
  if (!response.ok) {
    let message = text.trim();
    try {
      const parsed = JSON.parse(text) as { error?: unknown };
      if (typeof parsed.error === "string") message = parsed.error;
    } catch {
      // plain text (a refusal before routing): shown as it is
    }
    throw new ApiError(response.status, `${response.status}: ${message}`);
  }
  return JSON.parse(text) as T;
}

/** GET from the console's API. */
export async function get<T>(path: string): Promise<T> {
  return answer<T>(await fetch(path, { headers: { authorization: `Bearer ${TOKEN}` } }));
}

/** POST JSON to the console's API (every action is one). */
export async function post<T>(path: string, body: unknown): Promise<T> {
  return answer<T>(
    await fetch(path, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    }),
  );
}

/** The event stream's URL (EventSource cannot send headers, so the token rides in the query). */
export function eventsUrl(): string {
  return `/api/events?token=${encodeURIComponent(TOKEN)}`;
}
