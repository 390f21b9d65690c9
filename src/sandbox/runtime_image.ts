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
import type { RockletLauncher } from "./rocklet_launcher.ts";

/** Options of buildRuntimeImage. */
export interface RuntimeImageOptions {
  /** The docker CLI that builds (and pushes). */
  docker: DockerCli;
  /** Base image; it needs /bin/sh and cp (default "debian:bookworm-slim"). */
  base?: string;
  /** Tag of the image (default `rock-runtime:<hash of its files>`). */
  tag?: string;
  /** Push the image after the build. */
  push?: boolean;
}

/**
 * Builds the runtime image of `launcher` with docker (skipped when an image of that tag exists
 * and no tag was given); returns its tag.
 * @throws {RockError} with docker's complaint when the build or push fails.
 */
export async function buildRuntimeImage(
  launcher: RockletLauncher,
  options: RuntimeImageOptions,
): Promise<string> {
  const { docker } = options;
  const base = options.base ?? "debian:bookworm-slim";
  const mounts = launcher.containerMounts();
  for (const mount of mounts) {
    if (!mount.target.startsWith("/rock/")) {
      throw new RockError(`Cannot build the runtime image: "${mount.target}" is not under /rock`);
    }
  }
  const stated = await Promise.all(
    mounts.map(async (m) => ({ ...m, stat: await Deno.stat(m.source) })),
  );
  // A split bundle's directory is named by its sources' hash: its path stands for its content.
  const identity = JSON.stringify([
    base,
    stated.map((m) => [m.source, m.target, m.stat.size, m.stat.mtime?.getTime()]),
  ]);
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(identity)),
  );
  const hash = Array.from(digest.slice(0, 6), (b) => b.toString(16).padStart(2, "0")).join("");
  const tag = options.tag ?? `rock-runtime:${hash}`;
  if (!options.tag && await docker.imageExists(tag)) return tag;
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
