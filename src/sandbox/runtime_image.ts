/**
 * The rock runtime image: a small image holding what a launcher mounts into a docker container
 * (the deno executable and rock's bundles, or the compiled rock), under /rock-runtime at the
 * paths the launcher expects below /rock. A pod's init container copies it into an emptyDir at
 * /rock, from which the sandbox container runs the rocklet (see kubernetes_pod.ts).
 */
import { join } from "node:path";
import { RockError } from "../common/errors.ts";
import type { DockerCli } from "./docker_cli.ts";
import { RUNTIME_DIR } from "./kubernetes_pod.ts";
import type { Mount, RockletLauncher } from "./rocklet_launcher.ts";

/** The base image of the runtime image unless told otherwise. */
export const DEFAULT_RUNTIME_BASE = "debian:bookworm-slim";

/** Files up to this size count by content in the image's tag; larger ones by path, size, mtime. */
const HASHED_BY_CONTENT = 16 * 1024 * 1024;

/** Options of buildRuntimeImage. */
export interface RuntimeImageOptions {
  /** The docker CLI that builds (and pushes). */
  docker: DockerCli;
  /** Base image; it needs /bin/sh and cp (default DEFAULT_RUNTIME_BASE). */
  base?: string | undefined;
  /** Tag of the image (default `rock-runtime:<hash of its files>`). */
  tag?: string | undefined;
  /** Push the image after the build. */
  push?: boolean | undefined;
}

/**
 * Builds the runtime image of `launcher` with docker (skipped when no tag is named and the image
 * of runtimeImageTag() exists) and pushes it when asked; returns its tag.
 * @throws {RockError} with docker's complaint when the build or push fails.
 */
export async function buildRuntimeImage(
  launcher: RockletLauncher,
  options: RuntimeImageOptions,
): Promise<string> {
  const { docker } = options;
  const tag = options.tag ?? await runtimeImageTag(launcher, options.base);
  if (!options.tag && await docker.imageExists(tag)) {
    if (options.push) await docker.exec(["push", tag], { timeoutMs: 30 * 60_000 });
    return tag;
  }
  const base = options.base ?? DEFAULT_RUNTIME_BASE;
  const mounts = runtimeMounts(launcher);
  const context = await Deno.makeTempDir({ prefix: "rock-runtime-image-" });
  try {
    for (const mount of mounts) {
      const target = join(context, "files", mount.target.slice("/rock/".length));
      await copyInto(mount.source, target);
    }
    await Deno.writeTextFile(
      join(context, "Dockerfile"),
      `FROM ${base}\nCOPY files/ ${RUNTIME_DIR}/\n`,
    );
    await docker.exec(["build", "--quiet", "--tag", tag, context], { timeoutMs: 10 * 60_000 });
    if (options.push) await docker.exec(["push", tag], { timeoutMs: 30 * 60_000 });
    return tag;
  } finally {
    await Deno.remove(context, { recursive: true });
  }
}

/**
 * The tag `buildRuntimeImage` gives the runtime image of `launcher` on `base` when no tag is
 * named: `rock-runtime:<hash>`, the hash of the base and the files by content (the bundles and
 * scripts) or, for large files (the deno executable), by real path, size and mtime. So every
 * rock of the same build gets the same tag, whichever cache directory its bundles are in.
 * @throws {RockError} when a file the launcher mounts is not under /rock.
 */
export async function runtimeImageTag(
  launcher: RockletLauncher,
  base: string = DEFAULT_RUNTIME_BASE,
): Promise<string> {
  const parts: string[] = [base];
  for (const mount of runtimeMounts(launcher)) {
    parts.push(`mount ${mount.target}`, ...await identities(mount.source, ""));
  }
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(JSON.stringify(parts))),
  );
  return `rock-runtime:${
    Array.from(digest.slice(0, 6), (b) => b.toString(16).padStart(2, "0")).join("")
  }`;
}

/** The launcher's mounts, each checked to be under /rock. */
function runtimeMounts(launcher: RockletLauncher): Mount[] {
  const mounts = launcher.containerMounts();
  for (const mount of mounts) {
    if (!mount.target.startsWith("/rock/")) {
      throw new RockError(`Cannot build the runtime image: "${mount.target}" is not under /rock`);
    }
  }
  return mounts;
}

/** One line per file under `source` (itself when a file): relative name and identity. */
async function identities(source: string, name: string): Promise<string[]> {
  const stat = await Deno.stat(source);
  if (stat.isDirectory) {
    const entries: string[] = [];
    for await (const entry of Deno.readDir(source)) entries.push(entry.name);
    const lines: string[] = [];
    for (const entry of entries.sort()) {
      lines.push(...await identities(join(source, entry), `${name}/${entry}`));
    }
    return lines;
  }
  if (stat.size > HASHED_BY_CONTENT) {
    return [`${name} ${await Deno.realPath(source)} ${stat.size} ${stat.mtime?.getTime()}`];
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", await Deno.readFile(source)));
  return [`${name} ${Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("")}`];
}

/** Copies file or directory `source` to `target` (directories whole), files executable. */
async function copyInto(source: string, target: string): Promise<void> {
  if ((await Deno.stat(source)).isDirectory) {
    await Deno.mkdir(target, { recursive: true });
    for await (const entry of Deno.readDir(source)) {
      await copyInto(join(source, entry.name), join(target, entry.name));
    }
    return;
  }
  await Deno.mkdir(join(target, ".."), { recursive: true });
  await Deno.copyFile(source, target);
  await Deno.chmod(target, 0o755);
}
