/**
 * How the rock executable gets into a sandbox and starts as its rocklet:
 * - compiled (`deno compile`): the executable itself, mounted read-only at /rock/bin/rock;
 * - from a bundle (`deno run rock.js`): the deno executable and that bundle, mounted read-only;
 * - from source: `deno bundle src/cli/rocklet_main.ts` (an entry serving only `rocklet`, half
 *   the size of the full bundle, so it starts in half the time) once into a cache file named by
 *   a hash of the sources, then as for a bundle.
 * No package install and no network are needed inside the image; any glibc image works.
 */
import { fileURLToPath } from "node:url";
import { basename, dirname, join } from "node:path";
import { RockError } from "../common/errors.ts";

/** A file to mount read-only into a container. */
export interface Mount {
  source: string;
  target: string;
}

/** How to run the rocklet on the host and in a container. */
export interface RockletLauncher {
  /** argv that serves a rocklet on this host at `host:port`. */
  hostCommand(host: string, port: number): string[];
  /** Read-only mounts a container needs. */
  containerMounts(): Mount[];
  /** Environment a container needs. */
  containerEnv(): Record<string, string>;
  /** Entrypoint argv inside a container, serving on `0.0.0.0:port`. */
  containerCommand(port: number): [string, ...string[]];
  /**
   * Environment of a sandbox's rocklet on this host (local backend): `ROCK_CLI`, the command that
   * runs the full `rock` executable (e.g. `rock model-service ...`).
   */
  hostEnv(): Record<string, string>;
}

/** Where the full `rock` command is inside a container (ROCK_CLI points at it). */
export const CONTAINER_ROCK_CLI = "/rock/bin/rock";

const UNSTABLE = "--unstable-no-legacy-abort";

/** A launcher for a compiled rock executable at `executable`. */
function compiledLauncher(executable: string): RockletLauncher {
  return {
    hostCommand: (host, port) => [executable, "rocklet", "--host", host, "--port", String(port)],
    containerMounts: () => [{ source: executable, target: CONTAINER_ROCK_CLI }],
    containerEnv: () => ({ ROCK_CLI: CONTAINER_ROCK_CLI }),
    hostEnv: () => ({ ROCK_CLI: executable }),
    containerCommand: (
      port,
    ) => ["/rock/bin/rock", "rocklet", "--host", "0.0.0.0", "--port", String(port)],
  };
}

/** Files a bundle launcher uses. */
export interface BundleFiles {
  /** The deno executable. */
  deno: string;
  /** The bundle serving `rocklet` (the slim one's entry file, or the full one). */
  rocklet: string;
  /**
   * The directory of the slim bundle's files when it is split (its entry plus chunks it loads
   * on first use, such as the zip library): mounted whole in containers.
   */
  rockletDir?: string | undefined;
  /** The full bundle (every role and command). */
  full: string;
  /** A shell script running the full bundle in a container (mounted at /rock/bin/rock). */
  containerWrapper: string;
  /** A shell script running the full bundle on this host. */
  hostWrapper: string;
}

/** A launcher for the deno executable running rock's bundles. */
export function bundleLauncher(files: BundleFiles): RockletLauncher {
  const run = ["run", "--allow-all", UNSTABLE, "--no-config"];
  // A split slim bundle is mounted as a directory; a single file as itself.
  const rockletMount = files.rockletDir
    ? { source: files.rockletDir, target: "/rock/lib/rocklet" }
    : { source: files.rocklet, target: "/rock/lib/rock.js" };
  const rockletInContainer = files.rockletDir
    ? `/rock/lib/rocklet/${basename(files.rocklet)}`
    : "/rock/lib/rock.js";
  return {
    hostCommand: (
      host,
      port,
    ) => [files.deno, ...run, files.rocklet, "rocklet", "--host", host, "--port", String(port)],
    hostEnv: () => ({ ROCK_CLI: files.hostWrapper }),
    containerMounts: () => [
      { source: files.deno, target: "/rock/bin/deno" },
      rockletMount,
      { source: files.full, target: "/rock/lib/rock-full.js" },
      { source: files.containerWrapper, target: CONTAINER_ROCK_CLI },
    ],
    // Deno wants a writable cache dir even for a self-contained bundle.
    containerEnv: () => ({
      DENO_DIR: "/tmp/.rock-deno",
      DENO_NO_UPDATE_CHECK: "1",
      NO_COLOR: "1",
      ROCK_CLI: CONTAINER_ROCK_CLI,
    }),
    // No V8 code cache: a container's DENO_DIR is new each time, so the ~0.5 MB cache a rocklet
    // would write there at start is never read again.
    containerCommand: (port) => [
      "/rock/bin/deno",
      ...run,
      "--no-code-cache",
      rockletInContainer,
      "rocklet",
      "--host",
      "0.0.0.0",
      "--port",
      String(port),
    ],
  };
}

/** Writes (once) an executable script that runs `bundle` with `deno`; returns its path. */
async function writeWrapper(path: string, deno: string, bundle: string): Promise<string> {
  const text =
    `#!/bin/sh\nexec '${deno}' run --allow-all ${UNSTABLE} --no-config '${bundle}' "$@"\n`;
  if ((await Deno.readTextFile(path).catch(() => "")) !== text) {
    const temp = `${path}.${crypto.randomUUID()}.tmp`;
    await Deno.writeTextFile(temp, text);
    await Deno.chmod(temp, 0o755);
    await Deno.rename(temp, path);
  }
  return path;
}

/** Hex SHA-256 of the sources under `root` (main.ts, deno.json, deno.lock, src/). */
async function sourceHash(root: string): Promise<string> {
  const files: string[] = ["main.ts", "deno.json", "deno.lock"];
  const walk = async (dir: string, rel: string) => {
    for await (const entry of Deno.readDir(join(root, dir))) {
      const path = `${rel}${entry.name}`;
      if (entry.isDirectory) await walk(join(dir, entry.name), `${path}/`);
      else if (entry.name.endsWith(".ts")) files.push(`src/${path}`);
    }
  };
  await walk("src", "");
  files.sort();
  const encoder = new TextEncoder();
  const parts: Uint8Array[] = [];
  for (const file of files) {
    parts.push(encoder.encode(`${file}\0`));
    parts.push(await Deno.readFile(join(root, file)).catch(() => new Uint8Array()));
  }
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) all.set(part, offset), offset += part.length;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return Array.from(digest.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Builds (or reuses) a bundle of this checkout in `cacheDir`: `full` (main.ts) as one file, or
 * `rocklet` (src/cli/rocklet_main.ts) split into a directory: its entry file plus chunks it
 * imports on first use (the zip library), so a rocklet's start reads only what it runs. Returns
 * the path of the file to run.
 * @throws {RockError} with deno's stderr when bundling fails.
 */
export async function ensureBundle(
  cacheDir: string,
  kind: "rocklet" | "full" = "rocklet",
): Promise<string> {
  // This file is src/sandbox/rocklet_launcher.ts in a checkout: the root is two levels up.
  const root = fileURLToPath(new URL("../../", import.meta.url));
  const hash = await sourceHash(root);
  const split = kind === "rocklet";
  const target = split ? join(cacheDir, `rocklet-${hash}`) : join(cacheDir, `rock-${hash}.js`);
  const entry = split ? join(target, "rocklet_main.js") : target;
  if (await Deno.stat(entry).then(() => true, () => false)) return entry;
  await Deno.mkdir(cacheDir, { recursive: true });
  const temp = `${target}.${crypto.randomUUID()}.tmp`;
  const source = split ? join(root, "src", "cli", "rocklet_main.ts") : join(root, "main.ts");
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      ...(split ? ["--code-splitting", "--outdir", temp] : ["--output", temp]),
      source,
    ],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    await Deno.remove(temp, { recursive: true }).catch(() => {});
    const stderr = new TextDecoder().decode(output.stderr).trim().split("\n").slice(-10).join("\n");
    throw new RockError(
      `Cannot bundle rock for sandboxes: deno bundle exited with ${output.code}: ${stderr}`,
    );
  }
  try {
    await Deno.rename(temp, target);
  } catch (error) {
    // Another process built the same bundle meanwhile: keep its copy.
    await Deno.remove(temp, { recursive: true }).catch(() => {});
    if (!(await Deno.stat(entry).then(() => true, () => false))) throw error;
  }
  return entry;
}

/**
 * Picks the launcher for how this process runs: compiled, from a bundle, or from source (then
 * bundles into `cacheDir` once per source change).
 */
export async function prepareRockletLauncher(
  options: { cacheDir: string },
): Promise<RockletLauncher> {
  const executable = await Deno.realPath(Deno.execPath());
  if (Deno.build.standalone) return compiledLauncher(executable);
  const main = Deno.mainModule;
  let rocklet: string;
  let full: string;
  let rockletDir: string | undefined;
  if (main.startsWith("file:") && main.endsWith(".js")) {
    rocklet = full = fileURLToPath(main);
  } else {
    [rocklet, full] = await Promise.all([
      ensureBundle(options.cacheDir, "rocklet"),
      ensureBundle(options.cacheDir, "full"),
    ]);
    rockletDir = dirname(rocklet);
  }
  await Deno.mkdir(options.cacheDir, { recursive: true });
  return bundleLauncher({
    deno: executable,
    rocklet,
    rockletDir,
    full,
    containerWrapper: await writeWrapper(
      join(options.cacheDir, "rock-container.sh"),
      "/rock/bin/deno",
      "/rock/lib/rock-full.js",
    ),
    hostWrapper: await writeWrapper(
      join(options.cacheDir, `rock-host-${await shortHash(full)}.sh`),
      executable,
      full,
    ),
  });
}

/** A short hash of a path, so wrappers for different bundles do not collide. */
async function shortHash(text: string): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)),
  );
  return Array.from(digest.slice(0, 4), (b) => b.toString(16).padStart(2, "0")).join("");
}
