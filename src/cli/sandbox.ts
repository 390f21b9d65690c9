/**
 * `rock sandbox start|ls|status|exec|stop|restart|rm|prune|logs|commit`: the user CLI over the
 * SDK, plus what `shell` and `cp` share: resolving the admin and the sandbox id (a unique prefix
 * does, see sandbox_ids.ts). Failures become one `error: ...` line and exit 1 (2 for
 * bad flags or config) through runCli() (exit.ts); `exec` exits with the command's own code.
 */
import { processEnvironment } from "../common/config.ts";
import { ConfigError, RockError } from "../common/errors.ts";
import {
  describeStop,
  describeStopped,
  type SandboxState,
  type StatusResponse,
} from "../protocol/admin.ts";
import { AdminClient } from "../sdk/admin_client.ts";
import { SessionExistsError } from "../sdk/errors.ts";
import { Sandbox } from "../sdk/sandbox.ts";
import {
  type CliConnection,
  type ConnectionFlags,
  mergeHeaders,
  resolveConnection,
  splitKeyValue,
} from "./cli_config.ts";
import { runCli } from "./exit.ts";
import { resolveSandboxId, resolveSandboxIds } from "./sandbox_ids.ts";
import { LiveOutput, StatusLine, writeAll } from "./terminal.ts";

/** Options of `rock sandbox start`. */
export interface StartOptions extends ConnectionFlags {
  image: string;
  memory: string;
  cpus: number;
  pull: "never" | "always" | "missing";
  autoClear: number;
  /** A fixed lease, in seconds (--timeout). */
  timeout?: number;
  startupTimeout: number;
  user?: string;
  experiment?: string;
  namespace?: string;
  cluster?: string;
  sandboxId?: string;
  env?: string[];
}

/** Options of `rock sandbox ls`. */
export interface ListOptions extends ConnectionFlags {
  state?: SandboxState;
  all: boolean;
  user?: string;
  experiment?: string;
  namespace?: string;
  image?: string;
  page: number;
  pageSize: number;
  json: boolean;
}

/** Options of `rock sandbox exec`. */
export interface ExecOptions extends ConnectionFlags {
  session?: string;
  timeout?: number;
  env?: string[];
  interactive?: boolean;
  tty?: boolean;
}

/** The admin URL and headers for `flags`. */
export function connection(flags: ConnectionFlags): Promise<CliConnection> {
  return resolveConnection(flags, processEnvironment());
}

/** The admin client for `flags`. */
export async function adminClient(flags: ConnectionFlags): Promise<AdminClient> {
  const { baseUrl, headers } = await connection(flags);
  return new AdminClient(baseUrl, { headers });
}

/**
 * A Sandbox handle on the existing sandbox `id` (or the one sandbox whose id starts so).
 * @throws {ConfigError} when no sandbox id, or more than one, starts with `id`.
 */
export async function attach(id: string, flags: ConnectionFlags): Promise<Sandbox> {
  const { baseUrl, headers } = await connection(flags);
  const client = new AdminClient(baseUrl, { headers });
  return new Sandbox({
    baseUrl,
    extraHeaders: headers,
    sandboxId: await resolveSandboxId(client, id),
  });
}

/** `K=V` strings as an object. */
export function keyValues(pairs: string[] | undefined): Record<string, string> {
  return Object.fromEntries((pairs ?? []).map((pair) => splitKeyValue(pair)!));
}

/** Creates bash session `session` unless it exists. */
export async function ensureSession(
  sandbox: Sandbox,
  session: string,
  env?: Record<string, string>,
): Promise<void> {
  try {
    await sandbox.createSession(session, { envEnable: true, env });
  } catch (error) {
    if (!(error instanceof SessionExistsError)) throw error;
  }
}

/** What a start is doing, from its status: the first phase not yet done. */
function phaseText(status: StatusResponse): string {
  const pending = Object.entries(status.status ?? {}).find(([, p]) => p.status !== "success");
  if (pending) return `${pending[0]}: ${pending[1].message}`;
  return status.is_alive ? "running" : "waiting for the rocklet";
}

/** `rock sandbox start`: prints the id once the sandbox runs; a spinner on a terminal. */
export function startSandbox(options: StartOptions): Promise<void> {
  return runCli(async () => {
    if (options.env?.length) {
      throw new ConfigError(
        "Cannot use --env with start: ROCK's start request carries no environment; " +
          "pass --env to `rock sandbox exec` or `rock sandbox shell` instead",
      );
    }
    const { baseUrl, headers } = await connection(options);
    const metadata: Record<string, string> = {};
    if (options.user) metadata["X-User-Id"] = options.user;
    if (options.experiment) metadata["X-Experiment-Id"] = options.experiment;
    if (options.namespace) metadata["X-Namespace"] = options.namespace;
    if (options.cluster) metadata["X-Cluster"] = options.cluster;
    const sandbox = new Sandbox({
      baseUrl,
      extraHeaders: mergeHeaders(headers, metadata),
      image: options.image,
      memory: options.memory,
      cpus: options.cpus,
      pull: options.pull,
      autoClearSeconds: options.autoClear * 60,
      timeoutSeconds: options.timeout,
      startupTimeout: options.startupTimeout,
      sandboxId: options.sandboxId,
    });
    const line = new StatusLine();
    const abort = new AbortController();
    const onInterrupt = () => abort.abort();
    Deno.addSignalListener("SIGINT", onInterrupt);
    line.spin(`starting ${options.image}`);
    let accepted = false;
    try {
      await sandbox.start({
        signal: abort.signal,
        onStatus: (status) => {
          accepted = true;
          line.set(`${status.sandbox_id} ${status.state}: ${phaseText(status)}`);
        },
      });
    } catch (error) {
      line.clear();
      let id: string | undefined;
      try {
        id = sandbox.sandboxId;
      } catch { /* the admin gave no id */ }
      // Leave nothing half-started behind, but never stop a sandbox whose id was given and
      // taken already (the admin refused the start; a failed start is gone already).
      if (id && (accepted || options.sandboxId === undefined)) {
        await sandbox.stop().catch(() => {});
      }
      if (abort.signal.aborted) {
        throw new RockError(`Start of sandbox "${id ?? "?"}" interrupted; the sandbox was stopped`);
      }
      throw error;
    } finally {
      line.clear();
      Deno.removeSignalListener("SIGINT", onInterrupt);
    }
    console.log(sandbox.sandboxId);
  });
}

/** What `rock sandbox ls` lists without `--all` or `--state`. */
const LIVE: SandboxState[] = ["pending", "running"];

/**
 * `rock sandbox ls`: a table, or the page's items as JSON. Live sandboxes by default; `--all`
 * adds the stopped and failed ones (the history), `--state` picks one state.
 */
export function listSandboxes(options: ListOptions): Promise<void> {
  return runCli(async () => {
    if (options.all && options.state) {
      throw new ConfigError("Cannot use --all with --state: --state picks the sandboxes listed");
    }
    const client = await adminClient(options);
    const page = await client.list({
      page: options.page,
      page_size: options.pageSize,
      state: options.state ?? (options.all ? undefined : LIVE.join(",")),
      user_id: options.user,
      experiment_id: options.experiment,
      namespace: options.namespace,
      image: options.image,
    });
    if (options.json) {
      console.log(JSON.stringify(page.items, null, 2));
      return;
    }
    const rows = [["ID", "STATE", "FAILURE", "IMAGE", "USER", "CREATED"]];
    for (const item of page.items) {
      rows.push([
        item.sandbox_id,
        item.state,
        item.failure_kind ?? "",
        item.image,
        item.user_id,
        item.create_time,
      ]);
    }
    const widths = rows[0]?.map((_, column) =>
      Math.max(...rows.map((row) => row[column]?.length ?? 0))
    ) ?? [];
    for (const row of rows) {
      console.log(row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join("  ").trimEnd());
    }
    if (page.has_more) {
      console.error(
        `(page ${options.page} of ${Math.ceil(page.total / options.pageSize)}, ` +
          `${page.total} sandboxes; use --page)`,
      );
    }
  });
}

/** `rock sandbox status ID`: any state, deleted ones too. */
export function showStatus(
  id: string,
  options: ConnectionFlags & { json: boolean },
): Promise<void> {
  return runCli(async () => {
    const client = await adminClient(options);
    const status = await client.getStatus(await resolveSandboxId(client, id), {
      includeAllStates: true,
    });
    if (options.json) {
      console.log(JSON.stringify(status, null, 2));
      return;
    }
    const ended = status.state === "stopped" || status.state === "failed" ||
      status.state === "deleted";
    const rows: [string, string | null][] = [
      ["sandbox", status.sandbox_id],
      // A stopped or failed sandbox says why and since when on this one line.
      [
        "state",
        ended ? describeStop(status) : status.is_alive ? `${status.state} (alive)` : status.state,
      ],
      ["image", status.image],
      [
        "cpus, memory",
        status.cpus === null ? "not limited by this backend" : `${status.cpus}, ${status.memory}`,
      ],
      ["user", status.user_id],
      ["experiment", status.experiment_id],
      ["namespace", status.namespace],
      ["host", status.host_name ? `${status.host_name} (${status.host_ip})` : null],
      ["created", status.create_time],
      ["started", status.start_time],
      ["expires", expiryText(status)],
      ["failure", ended && status.stop_reason ? null : status.failure_reason],
      // The class of the end: what a trainer retries (infra) or scores (the rest).
      ["failure kind", status.failure_kind ?? null],
      ["deleted", status.delete_time ?? null],
    ];
    for (const [name, phase] of Object.entries(status.status ?? {})) {
      rows.push([name, `${phase.status}: ${phase.message}`]);
    }
    for (const [name, value] of rows) {
      if (value !== null && value !== "") console.log(`${name.padEnd(13)} ${value}`);
    }
  });
}

/** When a running sandbox will be stopped and why, or null (stopped, or an admin without leases). */
function expiryText(status: StatusResponse): string | null {
  if (!status.expire_time) return null;
  return `${status.expire_time} (in ${formatSeconds(status.expire_in_seconds ?? 0)}): ${
    status.expire_reason ?? ""
  }`;
}

/** `3725` as `1h2m5s`. */
function formatSeconds(total: number): string {
  const parts: string[] = [];
  let left = Math.round(total);
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]] as const) {
    if (left >= size) parts.push(`${Math.floor(left / size)}${unit}`), left %= size;
  }
  if (left > 0 || parts.length === 0) parts.push(`${left}s`);
  return parts.join("");
}

/** `rock sandbox extend ID DURATION`: the sandbox is stopped `seconds` from now. */
export function extendSandbox(
  id: string,
  seconds: number,
  flags: ConnectionFlags,
): Promise<void> {
  return runCli(async () => {
    const client = await adminClient(flags);
    const sandboxId = await resolveSandboxId(client, id);
    const lease = await client.setTimeout(sandboxId, seconds);
    console.log(
      `${sandboxId} expires at ${lease.expire_time} (in ${formatSeconds(lease.expire_in_seconds)})`,
    );
  });
}

/** `rock sandbox exec ID [--session S] -- CMD...`: the command's exit code becomes rock's. */
export function execCommand(id: string, argv: string[], options: ExecOptions): Promise<void> {
  return runCli(async () => {
    if (options.session !== undefined && options.env?.length) {
      throw new ConfigError(
        "Cannot use --env with --session: the session keeps its own environment; " +
          "run `export KEY=VALUE` in it instead",
      );
    }
    if (options.session !== undefined && (options.interactive || options.tty)) {
      throw new ConfigError(
        "Cannot use -i or -t with --session: a session runs whole commands; leave out --session",
      );
    }
    const sandbox = await attach(id, options);
    if (options.interactive || options.tty) {
      const { attachProcess, commandOf } = await import("./sandbox_terminal.ts");
      const code = await attachProcess(sandbox, {
        command: commandOf(argv),
        tty: options.tty ?? false,
        env: keyValues(options.env),
      });
      // A read of stdin may still be pending: do not wait for it.
      Deno.exit(code);
    }
    if (options.session === undefined) {
      const env = keyValues(options.env);
      // `env -- K=V cmd` adds to the sandbox's environment (execute's env would replace it).
      const command = Object.keys(env).length > 0
        ? ["env", "--", ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv]
        : argv;
      // Printed as it comes (an admin without live output hands all of it over at the end).
      const live = new LiveOutput();
      const result = await sandbox.execute(command, {
        timeout: options.timeout ?? 1200,
        onOutput: (stream, text) => live.write(stream, text),
      });
      if (!live.wrote) {
        live.write("stdout", result.stdout);
        live.write("stderr", result.stderr);
      }
      await live.finish();
      return result.exit_code ?? 0;
    }
    await ensureSession(sandbox, options.session);
    const live = new LiveOutput();
    const result = await sandbox.arun(argv.join(" "), {
      session: options.session,
      waitTimeout: options.timeout ?? 300,
      onOutput: (text) => live.write("stdout", text),
    });
    if (!live.wrote && result.output) live.write("stdout", result.output);
    await live.finish({ newline: true });
    if (result.exitCode === null) throw new RockError(result.failureReason);
    return result.exitCode;
  });
}

/** `rock sandbox stop ID...`: exit 1 when any of them could not be stopped. */
export function stopSandboxes(ids: string[], options: ConnectionFlags): Promise<void> {
  return runCli(async () => {
    const client = await adminClient(options);
    return await eachSandbox(await resolveSandboxIds(client, ids), "stop", (id) => client.stop(id));
  });
}

/**
 * `rock sandbox rm ID...`: deletes stopped or failed sandboxes from the admin's history
 * (`--force` stops running ones first); exit 1 when any of them could not be deleted.
 */
export function removeSandboxes(
  ids: string[],
  options: ConnectionFlags & { force: boolean },
): Promise<void> {
  return runCli(async () => {
    const client = await adminClient(options);
    return await eachSandbox(await resolveSandboxIds(client, ids), "delete", async (id) => {
      if (options.force) await client.stop(id);
      await client.delete(id);
    });
  });
}

/**
 * `rock sandbox prune --older-than D`: deletes every stopped or failed sandbox that ended more
 * than D ago; prints their ids. Exit 1 when any of them could not be deleted.
 */
export function pruneSandboxes(
  /** `olderThan`: seconds. */
  options: ConnectionFlags & { olderThan: number },
): Promise<void> {
  return runCli(async () => {
    const client = await adminClient(options);
    const before = new Date(Date.now() - options.olderThan * 1000).toISOString();
    // All of them first: deleting while paging would shift the pages.
    const ids: string[] = [];
    for (let page = 1;; page++) {
      const listed = await client.list({
        state: "stopped,failed",
        stopped_before: before,
        page,
        page_size: 500,
      });
      ids.push(...listed.items.map((item) => item.sandbox_id));
      if (!listed.has_more) break;
    }
    return await eachSandbox(ids, "delete", (id) => client.delete(id));
  });
}

/**
 * `rock sandbox restart ID`: places the stopped or failed sandbox again under its id and waits
 * until it runs; prints the id.
 */
export function restartSandbox(
  id: string,
  options: ConnectionFlags & { startupTimeout: number },
): Promise<void> {
  return runCli(async () => {
    const { baseUrl, headers } = await connection(options);
    const client = new AdminClient(baseUrl, { headers });
    const sandbox = new Sandbox({
      baseUrl,
      extraHeaders: headers,
      sandboxId: await resolveSandboxId(client, id),
      startupTimeout: options.startupTimeout,
    });
    const line = new StatusLine();
    line.spin(`restarting ${sandbox.sandboxId}`);
    try {
      await sandbox.restart({
        onStatus: (status) =>
          line.set(`${status.sandbox_id} ${status.state}: ${phaseText(status)}`),
      });
    } finally {
      line.clear();
    }
    console.log(sandbox.sandboxId);
  });
}

/**
 * `call` on each of `ids` at once, printing each id done on stdout and one error line for each
 * that failed; the exit code: 1 when any failed.
 */
async function eachSandbox(
  ids: string[],
  verb: string,
  call: (id: string) => Promise<unknown>,
): Promise<number> {
  const results = await Promise.allSettled(ids.map(call));
  let failed = 0;
  results.forEach((result, index) => {
    if (result.status === "fulfilled") {
      console.log(ids[index]);
      return;
    }
    failed++;
    const message = result.reason instanceof Error ? result.reason.message : result.reason;
    console.error(
      `error: Cannot ${verb} sandbox "${ids[index]}": ${
        String(message).replace(/\s*\n\s*/g, " | ")
      }`,
    );
  });
  return failed > 0 ? 1 : 0;
}

/**
 * `rock sandbox commit ID TAG [--username U --password-stdin]`: an image of the sandbox, pushed
 * when the tag names a registry; the password is read from stdin only (never a flag, so it stays
 * out of the process list and shell history). Prints the tag.
 */
export function commitSandbox(
  id: string,
  tag: string,
  options: ConnectionFlags & { username?: string; passwordStdin?: boolean },
): Promise<void> {
  return runCli(async () => {
    if (options.passwordStdin && !options.username) {
      throw new ConfigError("--password-stdin needs --username");
    }
    if (options.username && !options.passwordStdin) {
      throw new ConfigError("--username needs --password-stdin (the password comes on stdin)");
    }
    const password = options.passwordStdin
      ? (await new Response(Deno.stdin.readable).text()).replace(/\r?\n$/, "")
      : undefined;
    const client = await adminClient(options);
    const credentials = options.username && password !== undefined
      ? { username: options.username, password }
      : undefined;
    await client.commit(await resolveSandboxId(client, id), tag, credentials);
    console.log(tag);
  });
}

/**
 * `rock sandbox logs ID [--tail N]`. For a stopped or failed sandbox whose logs are still there,
 * one more line on stderr says why and since when it stopped; when they are gone, the error does.
 */
export function showLogs(id: string, options: ConnectionFlags & { tail: number }): Promise<void> {
  return runCli(async () => {
    const client = await adminClient(options);
    const sandboxId = await resolveSandboxId(client, id);
    const result = await client.getLogs(sandboxId, options.tail);
    const { logs } = result;
    if (logs) await writeAll(Deno.stdout, logs.endsWith("\n") ? logs : `${logs}\n`);
    if (result.state === "stopped" || result.state === "failed") {
      console.error(describeStopped(sandboxId, result));
    }
  });
}
