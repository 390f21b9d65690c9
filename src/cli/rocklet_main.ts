/**
 * A slim entry that serves only `rock rocklet` (same flags and exit codes as the executable). The
 * launcher bundles it for sandboxes: half the size of the full bundle, so a sandbox's rocklet
 * starts in about half the time.
 */
import "./cjs_require.ts";
import { addRocklet, createProgram, runProgram } from "./program.ts";

const program = createProgram();
addRocklet(program);
await runProgram(program);
