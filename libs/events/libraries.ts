// Which sending libraries run on a server. A server-side SDK's own HTTP requests carry the SDK's
// user agent (`analytics-node-next/latest`, `python-requests/2.x`), not its end user's: that
// one, when the SDK knows it, comes in `context.userAgent`. Events from these libraries never
// take the request's user agent, so bot detection never judges the SDK itself (issue 16 item 5).

/** Segment's server-side libraries (context.library.name) and their community ports. */
const SERVER_LIBRARY =
  /^(?:@segment\/)?analytics[-._ ]?(?:node|node-next|python|ruby|go|java|php|net|dotnet|clojure|rust|elixir|scala|kotlin-jvm)(?:$|[-/@ ])|^analytics\.net$|^analytics-(?:server|backend)/i;

export function isServerLibrary(name: string | null | undefined): boolean {
  return typeof name === 'string' && SERVER_LIBRARY.test(name.trim());
}
