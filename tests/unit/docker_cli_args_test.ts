/** DockerCli passes every argument through dax's escaping intact, and reads its own run arguments. */
import assert from "node:assert/strict";
import { DockerCli, runTarget } from "../../src/sandbox/docker_cli.ts";

Deno.test("DockerCli.exec() passes shell reserved words (done, if, in) as plain arguments", async () => {
  // `echo` stands in for docker: it prints the arguments it was given.
  const cli = new DockerCli({ binary: "echo" });
  const args = ["run", "--name", "done", "if", "in", "for", "a b", "it's"];
  assert.equal((await cli.exec(args)).trim(), args.join(" "));
});

Deno.test("runTarget() reads the published host ports, the image and --pull=never from run args", () => {
  assert.deepEqual(
    runTarget([
      "-d",
      "--init",
      "--pull=never",
      "--name",
      "done",
      "-p",
      "127.0.0.1:8080:80",
      "--publish=9090:90",
      "-p[::1]:7070:70",
      "-p",
      "127.0.0.1::22555",
      "-e",
      "A=B",
      "-dit",
      "python:3.11",
      "sleep",
      "-p",
      "1:1",
    ]),
    {
      ports: [
        { hostIp: "127.0.0.1", hostPort: 8080 },
        { hostIp: "0.0.0.0", hostPort: 9090 },
        { hostIp: "::1", hostPort: 7070 },
      ],
      image: "python:3.11",
      pullNever: true,
    },
  );
  assert.deepEqual(runTarget(["--pull", "missing", "img"]), {
    ports: [],
    image: "img",
    pullNever: false,
  });
});
