/** A URL with its password replaced (`user:PASSWORD@`, and a libpq `password=` parameter), safe for logs and errors. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):([^@/]*)@/, "//$1:***@").replace(/([?&]password=)[^&#]*/gi, "$1***");
}
