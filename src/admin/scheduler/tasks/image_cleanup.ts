/**
 * ImageCleanupTask: when the docker images' disk use exceeds `threshold` (or ROCK's
 * `disk_threshold`), removes the least recently used images that nothing uses until it is under.
 * "Used" comes from rock's own sandbox records (the newest create_time per image), else, for an
 * image rock never ran, the image's creation time. Never removed: images of pending or running sandboxes, images any
 * container (running or not) was made from, and images named in `keep`. Native: no docuum.
 */
import { ConfigError, RockError } from "../../../common/errors.ts";
import { memoryBytes } from "../../../protocol/admin.ts";
import type { DockerCli } from "../../../sandbox/docker_cli.ts";
import { BaseTask, type TaskContext, type TaskOptions, type TaskResult } from "../base_task.ts";

/** Bytes in a size docker prints ("169.9MB", "1.2GB", "512kB", "0B"): decimal units. */
export function parseDockerSize(text: string): number {
  const match = /^([\d.]+)\s*([kKMGTP]?)B$/.exec(text.trim());
  if (!match) return 0;
  const [, digits, unit = ""] = match;
  const power = " kMGTP".indexOf(unit.toUpperCase() === "K" ? "k" : unit || " ");
  return Math.round(Number(digits) * 1000 ** Math.max(0, power));
}

interface ImageRow {
  id: string;
  refs: string[];
  createdMs: number;
}

/** Keeps docker images under a disk threshold, least recently used first. */
export class ImageCleanupTask extends BaseTask {
  readonly #threshold: number;
  readonly #keep: Set<string>;
  readonly #only: string[] | undefined;
  readonly #docker: DockerCli | undefined;

  /**
   * Reads `threshold` / `disk_threshold` ("1T", "50g"), `keep` (image references or ids never
   * removed) and `only` (reference prefixes: when given, only images named so are removed).
   * Docker is called through `docker`, else the admin's (the run's `ctx.docker`).
   */
  constructor(options: TaskOptions, docker?: DockerCli) {
    super(options);
    const raw = String(this.params.threshold ?? this.params.disk_threshold ?? "1T");
    this.#threshold = memoryBytes(raw);
    if (!(this.#threshold > 0)) {
      throw new ConfigError(
        `Invalid ImageCleanupTask threshold "${raw}": expected a size such as 1T or 50g`,
      );
    }
    this.#keep = new Set((this.params.keep as string[] | undefined) ?? []);
    this.#only = this.params.only as string[] | undefined;
    this.#docker = docker;
  }

  async #diskUse(docker: DockerCli): Promise<number> {
    const out = await docker.exec(["system", "df", "--format", "{{json .}}"]);
    const images = out.split("\n").filter(Boolean).map((l) => JSON.parse(l)).find((r) =>
      r.Type === "Images"
    );
    return parseDockerSize(images?.Size ?? "0B");
  }

  async #images(docker: DockerCli): Promise<ImageRow[]> {
    const out = await docker.exec(["image", "ls", "--no-trunc", "--format", "{{json .}}"]);
    const byId = new Map<string, ImageRow>();
    for (const line of out.split("\n").filter(Boolean)) {
      const row = JSON.parse(line);
      const ref = row.Repository !== "<none>" ? `${row.Repository}:${row.Tag}` : undefined;
      const created = Date.parse(String(row.CreatedAt).replace(/ [A-Z]+$/, ""));
      const entry: ImageRow = byId.get(row.ID) ?? { id: row.ID, refs: [], createdMs: created };
      if (ref) entry.refs.push(ref);
      byId.set(row.ID, entry);
    }
    return [...byId.values()];
  }

  /** Removes LRU images until the disk use is under the threshold; reports what it removed. */
  async runAction(ctx: TaskContext): Promise<TaskResult> {
    const docker = this.#docker ?? ctx.docker;
    if (!docker) throw new RockError("Cannot clean up images: the admin has no docker CLI");
    let use = await this.#diskUse(docker);
    const before = use;
    if (use <= this.#threshold) return { disk_use: use, threshold: this.#threshold, removed: [] };
    const active = await ctx.store.sandboxes.listByState(["pending", "running"]);
    const inUse = new Set(active.map((r) => r.image));
    const containers = await docker.exec([
      "ps",
      "--all",
      "--no-trunc",
      "--format",
      "{{.Image}}",
    ]);
    for (const image of containers.split("\n").filter(Boolean)) inUse.add(image);
    const lastUse = await ctx.store.sandboxes.lastUseByImage();
    const candidates = (await this.#images(docker))
      .filter((image) =>
        !image.refs.some((ref) => inUse.has(ref) || this.#keep.has(ref)) &&
        !inUse.has(image.id) && !this.#keep.has(image.id) &&
        (!this.#only || image.refs.some((ref) => this.#only!.some((p) => ref.startsWith(p))))
      )
      .map((image) => ({
        ...image,
        // rock's own records win; an image rock never ran counts as used when it was made.
        lastUse: Math.max(0, ...image.refs.map((ref) => lastUse.get(ref) ?? 0)) ||
          image.createdMs || 0,
      }))
      .sort((a, b) => a.lastUse - b.lastUse);
    const removed: string[] = [];
    for (const image of candidates) {
      if (use <= this.#threshold || ctx.signal.aborted) break;
      const targets = image.refs.length > 0 ? image.refs : [image.id];
      const result = await docker.call(["rmi", ...targets]);
      if (result.code !== 0) {
        ctx.logger.warn("Cannot remove image", {
          image: targets.join(" "),
          error: result.stderr.trim(),
        });
        continue;
      }
      removed.push(...targets);
      use = await this.#diskUse(docker);
    }
    ctx.logger.info("Image cleanup", { before, after: use, threshold: this.#threshold, removed });
    return { disk_use_before: before, disk_use: use, threshold: this.#threshold, removed };
  }
}
