import { Hono } from "hono";
import { getRequestListener } from "@hono/node-server";
import http from "node:http";
const override = Deno.args[0] === "override";
const app = new Hono();
app.post("/x", async (c) => c.json({ ok: JSON.parse(await c.req.text()) }));
const listener = getRequestListener(app.fetch, { overrideGlobalObjects: override });
const server = http.createServer(listener);
server.listen(0, "127.0.0.1", () => console.log((server.address() as { port: number }).port));
