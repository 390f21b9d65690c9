/**
 * Request ids: `X-Request-Id` travels client -> admin -> rocklet and appears in both servers' log
 * lines for the request (field `request_id`); the admin echoes it in its response.
 */

/** The header that carries a request id. */
export const REQUEST_ID_HEADER = "x-request-id";

/** What a client's id may look like: 1 to 128 of letters, digits and `._:-`. */
const SANE = /^[A-Za-z0-9._:-]{1,128}$/;

/** The request id a server uses for a request: the client's when it is sane, else a new one. */
export function requestIdOf(header: string | null | undefined): string {
  return header && SANE.test(header) ? header : crypto.randomUUID();
}

/**
 * The level of a request's log line: calls that change something (POST) at info; reads, polls
 * and health probes (GET, HEAD), which clients repeat many times a second, at debug.
 */
export function requestLogLevel(method: string): "info" | "debug" {
  return method === "GET" || method === "HEAD" ? "debug" : "info";
}
