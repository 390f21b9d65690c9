/**
 * The `rock` executable. The command tree is src/cli/program.ts; bad input exits 2 with one
 * line, failures 1 (src/cli/exit.ts).
 */
import "./src/cli/cjs_require.ts";
import { buildProgram, runProgram } from "./src/cli/program.ts";

if (import.meta.main) await runProgram(buildProgram(), Deno.args);
