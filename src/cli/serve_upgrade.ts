/**
 * Upgrade requests (WebSockets) on `node:http`: the role's UpgradeHandler names where one goes,
 * and the raw connection is spliced to that server, which answers the handshake itself. The
 * admin relays WebSockets to rocklets this way, so it neither parses nor re-frames them.
 */
import type { IncomingMessage } from "node:http";
import net from "node:net";
import type { Duplex } from "node:stream";
import type { UpgradeHandler } from "./server.ts";

/** The `Request` (headers, no body) of an upgrade `message`. */
function requestOf(message: IncomingMessage): Request {
  const headers = new Headers();
  for (const [name, value] of headerPairs(message.rawHeaders)) headers.append(name, value);
  return new Request(`http://${headers.get("host") ?? "localhost"}${message.url ?? "/"}`, {
    method: message.method ?? "GET",
    headers,
  });
}

/** Writes `response` as HTTP/1.1 on `socket`, then closes it. */
async function refuse(socket: Duplex, response: Response): Promise<void> {
  const body = new Uint8Array(await response.arrayBuffer());
  const lines = [`HTTP/1.1 ${response.status} ${response.statusText || "Error"}`];
  response.headers.forEach((value, name) => {
    if (name !== "content-length" && name !== "connection") lines.push(`${name}: ${value}`);
  });
  lines.push(`content-length: ${body.length}`, "connection: close", "", "");
  socket.end(Buffer.concat([Buffer.from(lines.join("\r\n")), body]));
}

/**
 * Serves one upgrade request: asks `handler` where it goes, then sends the request there (its
 * headers as they came but `host`) and splices the two connections; `open` tracks the
 * connections so shutdown can end them.
 */
export async function serveUpgrade(
  handler: UpgradeHandler,
  upgrade: { message: IncomingMessage; socket: Duplex; head: Buffer },
  open: Set<Duplex>,
): Promise<void> {
  const { message, socket, head } = upgrade;
  socket.on("error", () => socket.destroy());
  let target: string | Response;
  try {
    target = await handler(requestOf(message));
  } catch (error) {
    target = Response.json({ detail: String(error) }, { status: 500 });
  }
  if (target instanceof Response) return await refuse(socket, target);
  const url = new URL(target);
  const upstream = net.connect(Number(url.port || 80), url.hostname);
  open.add(socket);
  open.add(upstream);
  let connected = false;
  const end = () => {
    open.delete(socket);
    open.delete(upstream);
    socket.destroy();
    upstream.destroy();
  };
  upstream.once("connect", () => {
    connected = true;
    const lines = [`${message.method} ${url.pathname}${url.search} HTTP/1.1`, `host: ${url.host}`];
    for (const [name, value] of headerPairs(message.rawHeaders)) {
      if (name.toLowerCase() !== "host") lines.push(`${name}: ${value}`);
    }
    upstream.write(`${lines.join("\r\n")}\r\n\r\n`);
    if (head.length > 0) upstream.write(head);
    socket.pipe(upstream);
    upstream.pipe(socket);
  });
  upstream.on("error", (error: Error) => {
    if (connected) return end();
    open.delete(socket);
    open.delete(upstream);
    refuse(
      socket,
      Response.json({ detail: `Cannot reach ${url.host}: ${error.message}` }, { status: 502 }),
    ).catch(() => socket.destroy());
  });
  upstream.on("close", end);
  socket.on("close", end);
}

/** Node's raw header list (name, value, name, value, ...) as pairs. */
function headerPairs(raw: string[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i] ?? "", raw[i + 1] ?? ""]);
  return pairs;
}
