/** The `rock rocklet` command, its flags built from the shared table (rocklet_flags.ts). */
import { type Command, Option } from "@commander-js/extra-typings";
import { forCommander } from "./options.ts";
import { ROCKLET_FLAGS, type RockletOptions } from "./rocklet_flags.ts";

/** Adds `rock rocklet` to `program`. */
export function addRocklet(program: Command): void {
  const rocklet = program
    .command("rocklet")
    .description("serve bash sessions, commands and files inside a sandbox over HTTP");
  for (const flag of ROCKLET_FLAGS) {
    const option = new Option(`${flag.flag} ${flag.placeholder}`, flag.description);
    if (flag.parse) option.argParser(forCommander(flag.parse));
    if (flag.default !== undefined) option.default(flag.default, flag.defaultText);
    rocklet.addOption(option);
  }
  rocklet.action(async (_options, command) => {
    const { runRocklet } = await import("./rocklet.ts");
    // The table's parsers made every value the type RockletOptions declares.
    await runRocklet(command.opts() as RockletOptions);
  });
}
