/**
 * The admin's proxy to ports inside a sandbox, relayed through the sandbox's rocklet (its
 * `/proxy/{port}/...` and `/portforward`, see rocklet/port_proxy.ts), so it works on every backend
 * with only the rocklet's port reachable.
 *
 * `/sandboxes/{id}/proxy[/{path}]` takes every method (ROCK v1.3 takes POST to port 8080, still
 * the default); the port comes from a `port/{N}/` path prefix, the `X-ROCK-Target-Port` header or
 * the `rock_target_port` query, at most one of them. A WebSocket upgrade of the same URL, or of
 * ROCK v1.3's `/sandboxes/{id}/proxy/ws[/{path}]`, is relayed to the selected port, and
 * `/sandboxes/{id}/portforward?port=N` carries raw TCP in binary frames.
 */
import { BadRequestError } from "../common/errors.ts";
import { SANDBOX_API } from "../protocol/admin.ts";
import { PTY_PATH } from "../protocol/terminal.ts";
import { endToEndHeaders, parsePort } from "../rocklet/port_proxy.ts";
import type { SandboxManager } from "./manager.ts";

/** The port a proxied call goes to when it names none (ROCK's SERVER port). */
export const DEFAULT_PROXY_PORT = 8080;
/** The header naming the target port. */
export const TARGET_PORT_HEADER = "x-rock-target-port";
/** The query parameter naming the target port. */
export const TARGET_PORT_QUERY = "rock_target_port";

/** Where a proxied call goes: the port, and the path and query to ask it for. */
export interface ProxyTarget {
  port: number;
  /** Starts with `/`; the query (`?...`) included, the selecting parameter removed. */
  path: string;
}

/**
 * The target of a call whose URL continues `rest` after `/proxy` (`""` or `/...`), with query
 * `search` (`?...` or `""`) and the X-ROCK-Target-Port header `header`.
 * @throws {BadRequestError} when more than one form names the port, or a port is not one.
 */
export function selectTarget(rest: string, search: string, header: string | null): ProxyTarget {
  const query = new URLSearchParams(search);
  const fromQuery = query.get(TARGET_PORT_QUERY);
  const prefix = /^\/port\/([^/]*)(\/.*)?$/.exec(rest);
  const named = [
    prefix && "a port/{N}/ path prefix",
    header !== null && `the ${TARGET_PORT_HEADER} header`,
    fromQuery !== null && `the ${TARGET_PORT_QUERY} query`,
  ]
    .filter(Boolean);
  if (named.length > 1) {
    throw new BadRequestError(
      `Invalid proxy request: the target port is named twice (${named.join(" and ")})`,
    );
  }
  query.delete(TARGET_PORT_QUERY);
  const left = query.size > 0 ? `?${query}` : "";
  if (prefix) {
    return { port: parsePort(prefix[1], "proxy port"), path: `${prefix[2] ?? "/"}${left}` };
  }
  const port = header !== null
    ? parsePort(header.trim(), `${TARGET_PORT_HEADER} header`)
    : fromQuery !== null
    ? parsePort(fromQuery, `${TARGET_PORT_QUERY} query`)
    : DEFAULT_PROXY_PORT;
  return { port, path: `${rest || "/"}${left}` };
}

/** `/apis/.../sandboxes/{id}/proxy/port/{port}`: where a target's own paths are reached. */
function proxyBase(id: string, port: number): string {
  return `${SANDBOX_API}/sandboxes/${encodeURIComponent(id)}/proxy/port/${port}`;
}

/**
 * A redirect's `Location` made to go back through the proxy: a path of the target's, or a URL
 * of the target's own address (127.0.0.1 or localhost at its port); others are left.
 */
export function rewriteLocation(location: string, id: string, port: number): string {
  if (location.startsWith("/") && !location.startsWith("//")) {
    return `${proxyBase(id, port)}${location}`;
  }
  try {
    const url = new URL(location);
    const local = ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname);
    const urlPort = Number(url.port || (url.protocol === "https:" ? 443 : 80));
    if (local && urlPort === port && url.protocol.startsWith("http")) {
      return `${proxyBase(id, port)}${url.pathname}${url.search}${url.hash}`;
    }
  } catch {
    // A relative reference: it resolves against the proxied URL already.
  }
  return location;
}

/** The sandbox's rocklet URL of `target` (`/proxy/{port}{path}`). */
async function rockletTarget(manager: SandboxManager, id: string, target: ProxyTarget) {
  const rocklet = await manager.rocklet(id);
  return `${rocklet.baseUrl}/proxy/${target.port}${target.path}`;
}

/** Splits a request URL into its raw (undecoded) path and query (`?...` or ""). */
function rawPathOf(url: string): { path: string; search: string } {
  const start = url.indexOf("/", url.indexOf("://") + 3);
  const tail = start < 0 ? "/" : url.slice(start);
  const mark = tail.indexOf("?");
  return mark < 0 ? { path: tail, search: "" } : {
    path: tail.slice(0, mark),
    search: tail.slice(mark),
  };
}

/**
 * Relays an HTTP call to `/sandboxes/{id}/proxy{rest}`: the request's body and the answer's are
 * streamed (SSE passes as it comes), headers pass except hop-by-hop ones, `host` and the port
 * selection; a redirect's `Location` goes back through the proxy.
 * @throws {BadRequestError} when the port selection is invalid.
 * @throws whatever `manager.rocklet(id)` throws (no such sandbox, not running).
 */
export async function proxyHttp(
  manager: SandboxManager,
  request: Request,
  id: string,
): Promise<Response> {
  const { path, search } = rawPathOf(request.url);
  const marker = `/sandboxes/${encodeURIComponent(id)}/proxy`;
  const rest = path.slice(path.indexOf(marker) + marker.length);
  const target = selectTarget(rest, search, request.headers.get(TARGET_PORT_HEADER));
  const url = await rockletTarget(manager, id, target);
  const hasBody = request.method !== "GET" && request.method !== "HEAD";
  const upstream = await fetch(url, {
    method: request.method,
    headers: endToEndHeaders(request.headers, [TARGET_PORT_HEADER]),
    body: hasBody ? request.body : null,
    redirect: "manual",
    signal: request.signal,
  });
  const headers = endToEndHeaders(upstream.headers);
  const location = headers.get("location");
  if (location && upstream.status >= 300 && upstream.status < 400) {
    headers.set("location", rewriteLocation(location, id, target.port));
  }
  return new Response(upstream.body, {
    status: upstream.status,
    statusText: upstream.statusText,
    headers,
  });
}

/** A sandbox route an upgrade request can take, and its sandbox id. */
const UPGRADE_ROUTE = new RegExp(
  `^${SANDBOX_API.replaceAll("/", "\\/")}\\/sandboxes\\/([^/]+)\\/(proxy|portforward|pty)(\\/.*)?$`,
);

/**
 * The rocklet URL a WebSocket upgrade of `request` is relayed to: `/sandboxes/{id}/proxy[/ws]...`
 * to the selected port's path (ROCK v1.3's `ws/` prefix removed), `/sandboxes/{id}/portforward`
 * to the rocklet's portforward.
 * @throws {BadRequestError} for another route or an invalid port.
 * @throws whatever `manager.rocklet(id)` throws (no such sandbox, not running).
 */
export async function upgradeTarget(manager: SandboxManager, request: Request): Promise<string> {
  const { path, search } = rawPathOf(request.url);
  const route = UPGRADE_ROUTE.exec(path);
  if (!route) {
    throw new BadRequestError(`Not Found: no WebSocket at ${request.method} ${path}`);
  }
  const id = decodeURIComponent(route[1] ?? "");
  if (route[2] === "pty") {
    // A process attached over the socket (protocol/terminal.ts); the rocklet validates the query.
    if (route[3]) throw new BadRequestError(`Not Found: no WebSocket at ${path}`);
    return `${(await manager.rocklet(id)).baseUrl}${PTY_PATH}${search}`;
  }
  if (route[2] === "portforward") {
    if (route[3]) throw new BadRequestError(`Not Found: no WebSocket at ${path}`);
    const port = parsePort(new URLSearchParams(search).get("port"), "portforward port");
    return `${(await manager.rocklet(id)).baseUrl}/portforward?port=${port}`;
  }
  let rest = route[3] ?? "";
  if (rest === "/ws" || rest.startsWith("/ws/")) rest = rest.slice(3);
  const target = selectTarget(rest, search, request.headers.get(TARGET_PORT_HEADER));
  return await rockletTarget(manager, id, target);
}
