/**
 * The rocklet's forwards to ports inside its sandbox: `/{method} /proxy/{port}/{path}` relays an
 * HTTP call (bodies streamed both ways, SSE unbuffered) or a WebSocket to `127.0.0.1:{port}`, and
 * `GET /portforward?port=N` (ROCK's rocklet route) carries a raw TCP connection in a WebSocket's
 * binary frames. The admin reaches every port of a sandbox through these, on every backend, with
 * only the rocklet's port published.
 */
import { BadRequestError } from "../common/errors.ts";

/** Path prefix of the rocklet's HTTP and WebSocket forward (not one of ROCK's rocklet routes). */
export const PORT_PROXY_PREFIX = "/proxy/";
/** ROCK's rocklet route of the TCP port-forward over WebSocket. */
export const PORT_FORWARD_PATH = "/portforward";

/** Headers that describe one hop, never forwarded (RFC 9110 §7.6.1), and the hop's host. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
]);

/** `headers` without hop-by-hop ones (and those `connection` names) nor `also`. */
export function endToEndHeaders(headers: Headers, also: readonly string[] = []): Headers {
  const named = (headers.get("connection") ?? "").split(",").map((h) => h.trim().toLowerCase());
  const out = new Headers();
  for (const [name, value] of headers) {
    if (HOP_BY_HOP.has(name) || named.includes(name) || also.includes(name)) continue;
    out.append(name, value);
  }
  return out;
}

/**
 * A TCP port number from `text`.
 * @throws {BadRequestError} unless it is an integer in 1..65535.
 */
export function parsePort(text: string | null | undefined, what: string): number {
  const port = Number(text);
  if (!text || !/^\d+$/.test(text) || port < 1 || port > 65535) {
    throw new BadRequestError(`Invalid ${what}: "${text ?? ""}" is not a port (1-65535)`);
  }
  return port;
}

/** A 502 naming what could not be reached. */
function unreachable(port: number, error: unknown): Response {
  const reason = error instanceof Error ? error.message : String(error);
  return Response.json(
    { detail: `Cannot reach port ${port} in the sandbox: ${reason}` },
    { status: 502 },
  );
}

/** True when `request` asks to become a WebSocket. */
export function isWebSocketUpgrade(request: Request): boolean {
  return (request.headers.get("upgrade") ?? "").toLowerCase() === "websocket";
}

/**
 * Answers `/proxy/{port}/{path}` (`rest` is what follows the prefix, query included): a
 * WebSocket is relayed to `ws://127.0.0.1:{port}/{path}`, any other call to `http://...`.
 * @throws {BadRequestError} when the port is not one.
 */
export function forwardToPort(request: Request, rest: string): Promise<Response> {
  const slash = rest.search(/[/?]/);
  const port = parsePort(slash < 0 ? rest : rest.slice(0, slash), "proxy port");
  let target = slash < 0 ? "/" : rest.slice(slash);
  if (target.startsWith("?")) target = `/${target}`;
  return isWebSocketUpgrade(request)
    ? relayWebSocket(request, port, target)
    : relayHttp(request, port, target);
}

async function relayHttp(request: Request, port: number, target: string): Promise<Response> {
  let upstream: Response;
  try {
    upstream = await fetch(`http://127.0.0.1:${port}${target}`, {
      method: request.method,
      headers: endToEndHeaders(request.headers),
      body: request.body,
      redirect: "manual",
      signal: request.signal,
    });
  } catch (error) {
    return unreachable(port, error);
  }
  return new Response(upstream.body, {
    status: upstream.status,
    statusText: upstream.statusText,
    headers: endToEndHeaders(upstream.headers),
  });
}

/**
 * Opens the target's WebSocket first, with the caller's headers but hop-by-hop and
 * `sec-websocket-*` ones (so its refusal is a 502 and the subprotocol is the one it chose), then upgrades the caller's and relays text and binary frames both ways; either
 * side's close closes the other.
 */
function relayWebSocket(request: Request, port: number, target: string): Promise<Response> {
  return relayWebSocketTo(
    request,
    `ws://127.0.0.1:${port}${target}`,
    (error) => unreachable(port, error),
  );
}

/**
 * Relays the WebSocket `request` to `url` (opened first: when it cannot be, the answer is
 * `refused(error)`), text and binary frames both ways; either side's close closes the other.
 */
export async function relayWebSocketTo(
  request: Request,
  url: string,
  refused: (error: unknown) => Response,
): Promise<Response> {
  const protocols = (request.headers.get("sec-websocket-protocol") ?? "")
    .split(",").map((p) => p.trim()).filter(Boolean);
  const headers = endToEndHeaders(request.headers);
  for (const name of [...headers.keys()]) {
    if (name.startsWith("sec-websocket-")) headers.delete(name);
  }
  const upstream = new WebSocket(url, { protocols, headers });
  upstream.binaryType = "arraybuffer";
  const opened = Promise.withResolvers<void>();
  upstream.onopen = () => opened.resolve();
  upstream.onerror = (event) => opened.reject(new Error((event as ErrorEvent).message ?? "error"));
  try {
    await opened.promise;
  } catch (error) {
    return refused(error);
  }
  const { socket, response } = Deno.upgradeWebSocket(
    request,
    upstream.protocol ? { protocol: upstream.protocol } : {},
  );
  socket.binaryType = "arraybuffer";
  splice(socket, upstream);
  return response;
}

/** A close code that may be sent (1005, 1006 and 1015 only describe what happened). */
function sendableCode(code: number): number | undefined {
  return code === 1000 || (code >= 3000 && code <= 4999) || (code > 1000 && code < 1005) ||
      (code > 1006 && code < 1015)
    ? code
    : undefined;
}

/** Relays frames between two WebSockets, `upstream` already open. */
function splice(socket: WebSocket, upstream: WebSocket): void {
  const pending: (string | ArrayBuffer)[] = [];
  socket.onopen = () => {
    for (const data of pending.splice(0)) socket.send(data);
  };
  upstream.onmessage = (event) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(event.data);
    else if (socket.readyState === WebSocket.CONNECTING) pending.push(event.data);
  };
  socket.onmessage = (event) => {
    if (upstream.readyState === WebSocket.OPEN) upstream.send(event.data);
  };
  const closeOther = (other: WebSocket) => (event: CloseEvent) => {
    if (other.readyState > WebSocket.OPEN) return;
    const code = sendableCode(event.code);
    code === undefined ? other.close() : other.close(code, event.reason);
  };
  upstream.onclose = closeOther(socket);
  socket.onclose = closeOther(upstream);
  upstream.onerror = () => socket.readyState === WebSocket.OPEN && socket.close(1011);
  socket.onerror = () => upstream.readyState === WebSocket.OPEN && upstream.close(1011);
}

/** How many bytes may wait to be sent on the WebSocket before reading the connection pauses. */
const HIGH_WATER = 4 * 1024 * 1024;

/**
 * Answers `GET /portforward?port=N` (ROCK's rocklet route): connects to `127.0.0.1:N` (refused:
 * 502), then upgrades to a WebSocket whose binary frames carry the connection's bytes both ways.
 * @throws {BadRequestError} when `port` is missing or not a port, or the call is no WebSocket.
 */
export async function portForward(request: Request, search: string): Promise<Response> {
  const port = parsePort(new URLSearchParams(search).get("port"), "portforward port");
  if (!isWebSocketUpgrade(request)) {
    throw new BadRequestError("Invalid portforward request: it must be a WebSocket upgrade");
  }
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
  } catch (error) {
    return unreachable(port, error);
  }
  const { socket, response } = Deno.upgradeWebSocket(request);
  socket.binaryType = "arraybuffer";
  const writer = conn.writable.getWriter();
  let closed = false;
  const end = () => {
    if (closed) return;
    closed = true;
    writer.releaseLock();
    try {
      conn.close();
    } catch {
      // Already closed.
    }
    if (socket.readyState <= WebSocket.OPEN) socket.close();
  };
  socket.onmessage = (event) => {
    const data = typeof event.data === "string"
      ? new TextEncoder().encode(event.data)
      : new Uint8Array(event.data);
    writer.write(data).catch(end);
  };
  socket.onclose = end;
  socket.onerror = end;
  socket.onopen = async () => {
    try {
      for await (const chunk of conn.readable) {
        if (socket.readyState !== WebSocket.OPEN) break;
        socket.send(chunk);
        while (socket.bufferedAmount > HIGH_WATER && socket.readyState === WebSocket.OPEN) {
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      }
    } catch {
      // The connection failed: the WebSocket closes below.
    }
    end();
  };
  return response;
}
