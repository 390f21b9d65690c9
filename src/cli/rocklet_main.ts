/**
 * The slim entry the launcher bundles for sandboxes: `rocklet [--host H] [--port P]
 * [--max-output-bytes SIZE] [--log-level L]`, the same flags and exit codes as `rock rocklet`.
 * It loads no CLI library and no Node compatibility layer that the rocklet does not need, so a
 * sandbox's rocklet answers sooner (`rock rocklet --help` documents the flags).
 */
import { RockError } from "../common/errors.ts";
import { VERSION } from "../version.ts";
import { runRocklet } from "./rocklet.ts";
import { checkLogLevel, checkPort, checkSize } from "./values.ts";

function usage(message: string): never {
  console.error(`error: ${message}`);
  Deno.exit(2);
}

const args = [...Deno.args];
if (args[0] === "--version" || args[0] === "-V") {
  console.log(VERSION);
  Deno.exit(0);
}
if (args.shift() !== "rocklet") {
  usage("this entry serves only `rocklet`: use the rock executable for other commands");
}
const options = {
  host: "0.0.0.0",
  port: 22555,
  maxOutputBytes: 10 * 1024 * 1024,
  logLevel: undefined as ReturnType<typeof checkLogLevel> | undefined,
};
while (args.length > 0) {
  const arg = args.shift()!;
  if (arg === "--help" || arg === "-h") {
    console.log(
      "Usage: rocklet [--host 0.0.0.0] [--port 22555] [--max-output-bytes 10m] [--log-level info]",
    );
    Deno.exit(0);
  }
  const [flag, inline] = arg.includes("=")
    ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
    : [arg, undefined];
  const value = inline ?? args.shift();
  if (!["--host", "--port", "--max-output-bytes", "--log-level"].includes(flag)) {
    usage(`unknown option '${flag}'`);
  }
  if (value === undefined) usage(`option '${flag}' argument missing`);
  try {
    if (flag === "--host") options.host = value;
    else if (flag === "--port") options.port = checkPort(value);
    else if (flag === "--max-output-bytes") options.maxOutputBytes = checkSize(value);
    else options.logLevel = checkLogLevel(value);
  } catch (error) {
    usage(`option '${flag}' argument '${value}' is invalid. ${(error as Error).message}`);
  }
}
try {
  await runRocklet(options);
} catch (error) {
  if (error instanceof RockError) {
    console.error(`error: ${error.message}`);
    Deno.exit(1);
  }
  throw error;
}
