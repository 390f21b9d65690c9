/**
 * `rock sandbox cp SRC DST`: copies a file or a directory between this machine and a sandbox;
 * exactly one side is `ID:PATH`. Files stream both ways (binary-safe, never whole in memory).
 * A directory's contents land in DST, created if missing (like `cp -rT`): uploads go as one zip
 * extracted in the sandbox, downloads list the tree with `find` and fetch each file. A progress
 * line shows on a terminal for files over 4 MiB.
 */
import { basename, join } from "node:path";
import { ConfigError, RockError } from "../common/errors.ts";
import { fileStream } from "../sdk/local_files.ts";
import type { Sandbox } from "../sdk/sandbox.ts";
import type { ConnectionFlags } from "./cli_config.ts";
import { runCli } from "./exit.ts";
import { attach } from "./sandbox.ts";
import { StatusLine } from "./terminal.ts";

/** Files at least this big get a progress line (on a terminal). */
const PROGRESS_BYTES = 4 * 1024 * 1024;
/** Files of a directory downloaded at once. */
const PARALLEL_DOWNLOADS = 8;

/** One side of a copy: a local path, or a path in a sandbox. */
type Side = { sandboxId: string; path: string } | { sandboxId?: undefined; path: string };

/** `ID:PATH` names a sandbox path; anything else (`./a:b`, `/x`) is local. */
export function parseSide(text: string): Side {
  const [, sandboxId, path] = /^([a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}):(.*)$/s.exec(text) ?? [];
  if (sandboxId === undefined || path === undefined) return { path: text };
  if (path === "") {
    throw new ConfigError(`Cannot copy "${text}": give a path after "${sandboxId}:"`);
  }
  return { sandboxId, path };
}

/** `rock sandbox cp SRC DST`. */
export function copyFiles(src: string, dst: string, flags: ConnectionFlags): Promise<void> {
  return runCli(async () => {
    const from = parseSide(src);
    const to = parseSide(dst);
    if (from.sandboxId !== undefined && to.sandboxId !== undefined) {
      throw new ConfigError(
        `Cannot copy "${src}" to "${dst}": both name a sandbox; one side must be a local path`,
      );
    }
    if (from.sandboxId === undefined && to.sandboxId === undefined) {
      throw new ConfigError(
        `Cannot copy "${src}" to "${dst}": neither names a sandbox; write one side as ID:PATH`,
      );
    }
    if (to.sandboxId !== undefined) {
      await upload(await attach(to.sandboxId, flags), from.path, to.path);
    } else {
      await download(await attach(from.sandboxId!, flags), from.path, to.path);
    }
  });
}

async function localInfo(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw new RockError(`Cannot copy "${path}": ${(error as Error).message}`);
  }
}

/** Counts the bytes passing through, for a progress line. */
function counted(onBytes: (done: number) => void): TransformStream<Uint8Array, Uint8Array> {
  let done = 0;
  return new TransformStream({
    transform(chunk, controller) {
      done += chunk.length;
      onBytes(done);
      controller.enqueue(chunk);
    },
  });
}

async function upload(sandbox: Sandbox, local: string, remote: string): Promise<void> {
  const info = await localInfo(local);
  if (!info) throw new RockError(`Cannot copy "${local}": no such file or directory`);
  const line = new StatusLine();
  try {
    if (info.isDirectory) {
      line.spin(`uploading ${local} to ${sandbox.sandboxId}:${remote}`);
      await sandbox.uploadDir(local, remote);
      return;
    }
    if (!info.isFile) throw new RockError(`Cannot copy "${local}": not a file or a directory`);
    const name = basename(local);
    const target = remote.endsWith("/") ? `${remote}${name}` : remote;
    const label = `uploading ${name}`;
    const stream = (await fileStream(local)).pipeThrough(
      counted((done) => {
        if (info.size >= PROGRESS_BYTES) line.progress(label, done, info.size);
      }),
    );
    await sandbox.upload(stream, target, { fileName: name });
  } finally {
    line.clear();
  }
}

/** Runs argv in the sandbox; returns stdout, or throws with the command's stderr. */
async function run(sandbox: Sandbox, argv: string[], what: string): Promise<string> {
  const result = await sandbox.execute(argv, { timeout: 600 });
  if (result.exit_code !== 0) {
    throw new RockError(
      `Cannot copy "${sandbox.sandboxId}:${what}": ${
        argv[0]
      } exited with code ${result.exit_code}: ${result.stderr.trim()}`,
    );
  }
  return result.stdout;
}

async function download(sandbox: Sandbox, remote: string, local: string): Promise<void> {
  const kind = (await run(sandbox, [
    "sh",
    "-c",
    'if [ -d "$1" ]; then echo dir; elif [ -f "$1" ]; then echo file; ' +
    'elif [ -e "$1" ]; then echo other; else echo none; fi',
    "sh",
    remote,
  ], remote)).trim();
  const where = `${sandbox.sandboxId}:${remote}`;
  if (kind === "none") throw new RockError(`Cannot copy "${where}": no such file or directory`);
  if (kind === "other") throw new RockError(`Cannot copy "${where}": not a file or a directory`);
  const line = new StatusLine();
  try {
    if (kind === "file") {
      const into = local.endsWith("/") || (await localInfo(local))?.isDirectory;
      const target = into ? join(local, basename(remote)) : local;
      const label = `downloading ${basename(remote)}`;
      await sandbox.downloadToPath(remote, target, (done, total) => {
        if (total >= PROGRESS_BYTES) line.progress(label, done, total);
      });
      return;
    }
    const root = remote.length > 1 ? remote.replace(/\/+$/, "") : remote;
    const prefix = root.endsWith("/") ? root : `${root}/`;
    const relative = (list: string) =>
      list.split("\0").filter((path) => path.startsWith(prefix)).map((path) =>
        path.slice(prefix.length)
      );
    const dirs = relative(await run(sandbox, ["find", root, "-type", "d", "-print0"], remote));
    const files = relative(await run(sandbox, ["find", root, "-type", "f", "-print0"], remote));
    await Deno.mkdir(local, { recursive: true });
    for (const dir of dirs) await Deno.mkdir(join(local, dir), { recursive: true });
    let done = 0;
    line.spin(`downloading ${where}: 0 of ${files.length} files`);
    const queue = [...files];
    const worker = async () => {
      for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
        await sandbox.downloadToPath(`${prefix}${file}`, join(local, file));
        line.set(`downloading ${where}: ${++done} of ${files.length} files`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_DOWNLOADS, files.length) }, worker));
  } finally {
    line.clear();
  }
}
