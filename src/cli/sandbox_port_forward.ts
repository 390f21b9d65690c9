/**
 * `rock sandbox port-forward ID LOCAL:REMOTE`: listens on 127.0.0.1:LOCAL and carries each TCP
 * connection to port REMOTE inside the sandbox through the admin's
 * `/sandboxes/{id}/portforward?port=REMOTE` WebSocket (binary frames both ways).
 */
import { BadRequestError } from "../common/errors.ts";
import { SANDBOX_API } from "../protocol/admin.ts";
import { parsePort } from "../rocklet/port_proxy.ts";
import { AdminClient } from "../sdk/admin_client.ts";
import type { ConnectionFlags } from "./cli_config.ts";
import { runCli } from "./exit.ts";
import { resolveSandboxId } from "./sandbox_ids.ts";
import { connection } from "./sandbox.ts";

/** Where a port-forward goes. */
export interface PortForwardOptions {
  /** The admin's base URL, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** Headers sent with each WebSocket handshake (the CLI's extra headers). */
  headers?: Record<string, string>;
  sandboxId: string;
  /** The local port to listen on (0: any free one). */
  localPort: number;
  /** The port inside the sandbox. */
  remotePort: number;
}

/** A running port-forward. */
export interface PortForward extends AsyncDisposable {
  /** The address it listens on. */
  readonly addr: Deno.NetAddr;
  /** Settles once the listener is closed. */
  readonly finished: Promise<void>;
}

/**
 * `LOCAL:REMOTE` (or `PORT` for both) as ports.
 * @throws {BadRequestError} when either is not a port.
 */
export function parsePortMapping(text: string): { localPort: number; remotePort: number } {
  const [local, remote, extra] = text.split(":");
  if (extra !== undefined) {
    throw new BadRequestError(`Invalid port mapping "${text}": expected LOCAL:REMOTE`);
  }
  return {
    localPort: local === "" && remote !== undefined ? 0 : parsePort(local, "local port"),
    remotePort: parsePort(remote ?? local, "remote port"),
  };
}

/** The WebSocket URL of the admin's portforward of `options`. */
function portForwardUrl(options: PortForwardOptions): string {
  const base = options.baseUrl.replace(/\/+$/, "").replace(/^http/, "ws");
  return `${base}${SANDBOX_API}/sandboxes/${
    encodeURIComponent(options.sandboxId)
  }/portforward?port=${options.remotePort}`;
}

/** Carries one local connection over one WebSocket until either side ends. */
async function carry(conn: Deno.TcpConn, options: PortForwardOptions): Promise<void> {
  const socket = new WebSocket(portForwardUrl(options), { headers: options.headers ?? {} });
  socket.binaryType = "arraybuffer";
  const closed = Promise.withResolvers<void>();
  const writer = conn.writable.getWriter();
  socket.onmessage = (event) => {
    writer.write(new Uint8Array(event.data as ArrayBuffer)).catch(() => socket.close());
  };
  // The remote side's end ends the local connection (and so the read below).
  const end = () => {
    closed.resolve();
    writer.close().catch(() => {}).finally(() => {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    });
  };
  socket.onclose = end;
  socket.onerror = end;
  const opened = await new Promise<boolean>((resolve) => {
    socket.onopen = () => resolve(true);
    closed.promise.then(() => resolve(false));
  });
  if (opened) {
    try {
      for await (const chunk of conn.readable) {
        if (socket.readyState !== WebSocket.OPEN) break;
        socket.send(chunk);
        while (socket.bufferedAmount > 4 * 1024 * 1024 && socket.readyState === WebSocket.OPEN) {
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      }
    } catch {
      // The local connection failed: the WebSocket closes below.
    }
    // The local side is done sending; the remote's last bytes may still be coming.
    if (socket.readyState === WebSocket.OPEN) socket.close();
  }
  await closed.promise;
}

/**
 * Listens on 127.0.0.1:`localPort` and forwards each connection to `remotePort` in the sandbox.
 * @throws {Deno.errors.AddrInUse} when the local port is taken.
 */
export function forwardPort(options: PortForwardOptions): PortForward {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: options.localPort });
  const carrying = new Set<Promise<void>>();
  const conns = new Set<Deno.TcpConn>();
  const finished = (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        const done = carry(conn, options).finally(() => {
          conns.delete(conn);
          carrying.delete(done);
        });
        carrying.add(done);
      }
    } catch {
      // The listener was closed.
    }
  })();
  return {
    addr: listener.addr,
    finished,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
      await finished;
      await Promise.all(carrying);
    },
  };
}

/**
 * `rock sandbox port-forward ID LOCAL:REMOTE`: forwards until SIGINT or SIGTERM, first checking
 * that the sandbox runs (a missing or stopped one is an error, not a silent listener).
 */
export function runPortForward(
  id: string,
  mapping: string,
  flags: ConnectionFlags,
): Promise<void> {
  return runCli(async () => {
    const ports = parsePortMapping(mapping);
    const { baseUrl, headers } = await connection(flags);
    const client = new AdminClient(baseUrl, { headers });
    const sandboxId = await resolveSandboxId(client, id);
    await client.getStatus(sandboxId);
    await using forward = forwardPort({ baseUrl, headers, sandboxId, ...ports });
    console.error(
      `Forwarding 127.0.0.1:${forward.addr.port} -> port ${ports.remotePort} of sandbox ${sandboxId}`,
    );
    const stopped = Promise.withResolvers<void>();
    const stop = () => stopped.resolve();
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
    await stopped.promise;
    Deno.removeSignalListener("SIGINT", stop);
    Deno.removeSignalListener("SIGTERM", stop);
  });
}
