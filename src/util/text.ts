// biome-ignore lint/suspicious/noControlCharactersInRegex: escaping them is the point
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/**
 * Text from someone else (a tool's error message, a caller's key) made safe
 * to put in an answer or a terminal: control characters escaped as `\uXXXX`,
 * cut to `max` characters (the cut marked with `…`), well-formed UTF-16.
 */
export function boundedText(text: string, max: number): string {
  const escaped = text.replace(CONTROLS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  return (escaped.length > max ? `${escaped.slice(0, max - 1)}…` : escaped).toWellFormed();
}
