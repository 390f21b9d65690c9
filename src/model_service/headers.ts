/**
 * Headers across the proxy: what goes upstream (the caller's, minus hop-by-hop and body framing;
 * Authorization kept) and what comes back; and URLs in a form safe to log.
 */

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "expect",
]);
// Set by fetch from the body it sends, or negotiated by fetch itself (it decompresses).
const REQUEST_DROP = new Set(["host", "content-length", "content-type", "accept-encoding"]);
/** Response headers not passed back: fetch decoded the body, and the server sets its own. */
export const RESPONSE_DROP = new Set(["content-length", "content-encoding", "date", "server"]);

/** A copy of `incoming` without hop-by-hop headers, those it names in Connection, and `drop`. */
export function dropHeaders(incoming: Headers, drop: Set<string>): Headers {
  const named = (incoming.get("connection") ?? "").toLowerCase().split(",").map((s) => s.trim());
  const out = new Headers();
  for (const [key, value] of incoming) {
    if (HOP_BY_HOP.has(key) || drop.has(key) || named.includes(key)) continue;
    out.append(key, value);
  }
  return out;
}

/** Headers to send upstream: the caller's, minus hop-by-hop and body framing (Authorization kept). */
export function upstreamHeaders(incoming: Headers): Headers {
  const headers = dropHeaders(incoming, REQUEST_DROP);
  headers.set("content-type", "application/json");
  return headers;
}

/** A URL safe to log: origin and path only (no credentials, no query). */
export function loggableUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return "<invalid url>";
  }
}
