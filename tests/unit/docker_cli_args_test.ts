/** DockerCli passes every argument through dax's escaping intact. */
import assert from "node:assert/strict";
import { DockerCli } from "../../src/sandbox/docker_cli.ts";

Deno.test("DockerCli.exec() passes shell reserved words (done, if, in) as plain arguments", async () => {
  // `echo` stands in for docker: it prints the arguments it was given.
  const cli = new DockerCli({ binary: "echo" });
  const args = ["run", "--name", "done", "if", "in", "for", "a b", "it's"];
  assert.equal((await cli.exec(args)).trim(), args.join(" "));
});
