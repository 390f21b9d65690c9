/**
 * The slim entry the launcher bundles for sandboxes: `rocklet [--host H] [--port P]
 * [--max-output-bytes SIZE] [--log-level L]`, the same flags (one table, rocklet_flags.ts) and
 * exit codes (exit.ts) as `rock rocklet`. It loads no CLI library and no Node compatibility layer
 * that the rocklet does not need, so a sandbox's rocklet answers sooner.
 */
import { VERSION } from "../version.ts";
import { exitOnFailure, exitUsage } from "./exit.ts";
import { runRocklet } from "./rocklet.ts";
import { parseRockletArgs, type RockletOptions, rockletUsage } from "./rocklet_flags.ts";

const [command, ...rest] = Deno.args;
if (command === "--version" || command === "-V") {
  console.log(VERSION);
  Deno.exit(0);
}
if (command !== "rocklet") {
  exitUsage("this entry serves only `rocklet`: use the rock executable for other commands");
}
let options: RockletOptions | "help";
try {
  options = parseRockletArgs(rest);
} catch (error) {
  exitUsage((error as Error).message);
}
if (options === "help") {
  console.log(rockletUsage());
  Deno.exit(0);
}
try {
  await runRocklet(options);
} catch (error) {
  exitOnFailure(error);
}
