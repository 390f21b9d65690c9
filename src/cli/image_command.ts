/** The `rock image` command tree: `build-runtime` builds the Kubernetes runtime image (image.ts). */
import type { Command } from "@commander-js/extra-typings";
import { Option } from "@commander-js/extra-typings";

/** Adds `rock image build-runtime` to `program`. */
export function addImage(program: Command): void {
  const image = program.command("image").description("images rock itself needs");
  image
    .command("build-runtime")
    .description(
      "build with docker the runtime image Kubernetes pods copy the rocklet from (deno and " +
        "rock's bundles, as this rock runs them); print its tag",
    )
    .option("--tag <tag>", "tag of the image (default: rock-runtime:<hash of its files>)")
    .option("--push", "push the image after the build", false)
    .option(
      "--base <image>",
      "base image, with /bin/sh and cp (default: config k8s.runtime_image_base, else " +
        "debian:bookworm-slim)",
    )
    .addOption(new Option("--env <name>", "config rock-conf/rock-<name>.yml").default("local"))
    .option("--config <file>", "config file (default: $ROCK_CONFIG or the --env file)")
    .option("--data-dir <dir>", "where the bundles are cached (default: config, else ~/.rock)")
    .action(async (options) => {
      const { buildRuntime } = await import("./image.ts");
      await buildRuntime(options);
    });
}
