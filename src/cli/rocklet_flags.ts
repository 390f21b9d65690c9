/**
 * The flags of `rock rocklet`, in one table read by both entries: the full CLI builds commander
 * options from it (rocklet_command.ts), the slim rocklet entry parses Deno.args with it
 * (rocklet_main.ts) without loading any CLI library.
 */
import type { LogLevel } from "../common/log.ts";
import { checkLogLevel, checkPort, checkSize } from "./values.ts";

/** Options of `rock rocklet`. */
export interface RockletOptions {
  host: string;
  port: number;
  maxOutputBytes: number;
  logLevel?: LogLevel;
}

/** One flag: its name, value placeholder, help, default and value check. */
export interface RockletFlag {
  /** `--max-output-bytes` */
  flag: string;
  /** The options field it sets. */
  key: keyof RockletOptions;
  /** `<size>` */
  placeholder: string;
  description: string;
  /** The default (none: the option stays undefined). */
  default?: string | number;
  /** How the default is shown in help, when not as is. */
  defaultText?: string;
  /** A value shown in the slim entry's usage line when there is no default. */
  example?: string;
  /** Checks and converts the value; throws an Error completing "expected ...". */
  parse?: (value: string) => string | number;
}

/** Every flag of `rock rocklet`. */
export const ROCKLET_FLAGS: readonly RockletFlag[] = [
  {
    flag: "--host",
    key: "host",
    placeholder: "<host>",
    description: "address to bind",
    default: "0.0.0.0",
  },
  {
    flag: "--port",
    key: "port",
    placeholder: "<port>",
    description: "TCP port (0 picks a free one)",
    default: 22555,
    parse: checkPort,
  },
  {
    flag: "--max-output-bytes",
    key: "maxOutputBytes",
    placeholder: "<size>",
    description: "cap on one command's output, e.g. 10m",
    default: 10 * 1024 * 1024,
    defaultText: "10m",
    parse: checkSize,
  },
  {
    flag: "--log-level",
    key: "logLevel",
    placeholder: "<level>",
    description: "debug, info, warn or error (default: $ROCK_LOGGING_LEVEL or info)",
    example: "info",
    parse: checkLogLevel,
  },
];

/** The options with every default of the table. */
export function defaultRockletOptions(): RockletOptions {
  const options: Record<string, unknown> = {};
  for (const flag of ROCKLET_FLAGS) {
    if (flag.default !== undefined) options[flag.key] = flag.default;
  }
  return options as unknown as RockletOptions;
}

/** One line of usage, as `rocklet --help` of the slim entry prints it. */
export function rockletUsage(): string {
  return `Usage: rocklet ${
    ROCKLET_FLAGS.map((flag) =>
      `[${flag.flag} ${flag.defaultText ?? flag.default ?? flag.example}]`
    ).join(" ")
  }`;
}

/**
 * Parses the arguments after `rocklet` (`--flag value` or `--flag=value`).
 * @returns the options, or `"help"` for `--help`/`-h`
 * @throws {Error} one line in commander's words for an unknown flag, a missing or a bad value
 */
export function parseRockletArgs(argv: readonly string[]): RockletOptions | "help" {
  const args = [...argv];
  const options: Record<string, unknown> = { ...defaultRockletOptions() };
  while (args.length > 0) {
    const arg = args.shift()!;
    if (arg === "--help" || arg === "-h") return "help";
    const equals = arg.indexOf("=");
    const [name, inline] = equals >= 0 ? [arg.slice(0, equals), arg.slice(equals + 1)] : [arg];
    const flag = ROCKLET_FLAGS.find((candidate) => candidate.flag === name);
    if (!flag) throw new Error(`unknown option '${name}'`);
    const value = inline ?? args.shift();
    if (value === undefined) throw new Error(`option '${name}' argument missing`);
    try {
      options[flag.key] = flag.parse ? flag.parse(value) : value;
    } catch (error) {
      throw new Error(
        `option '${name} ${flag.placeholder}' argument '${value}' is invalid. ${
          (error as Error).message
        }`,
      );
    }
  }
  return options as unknown as RockletOptions;
}
