/**
 * Files with the SDK: text, binary (byte-exact), a whole directory, and a download to disk.
 *
 *   deno run -A examples/sdk_files.ts [BASE_URL] [IMAGE]
 *
 * BASE_URL defaults to $ROCK_BASE_URL or http://localhost:8080; IMAGE to python:3.11.
 */
import { join } from "node:path";
import { Sandbox } from "../src/sdk/mod.ts";

const [baseUrl, image] = Deno.args;
await using sandbox = await new Sandbox({ baseUrl, image, memory: "1g", cpus: 1 }).start();
const local = await Deno.makeTempDir({ prefix: "rock-example-" });
try {
  await sandbox.writeFile("/tmp/example/notes.txt", "written by the SDK\n");
  console.log(`text: ${(await sandbox.readFile("/tmp/example/notes.txt")).trim()}`);

  const bytes = crypto.getRandomValues(new Uint8Array(64 * 1024));
  await sandbox.upload(bytes, "/tmp/example/random.bin");
  const back = await sandbox.download("/tmp/example/random.bin");
  console.log(`binary: ${back.length} bytes, identical: ${back.every((b, i) => b === bytes[i])}`);

  await Deno.mkdir(join(local, "project", "src"), { recursive: true });
  await Deno.writeTextFile(join(local, "project", "README"), "hello");
  await Deno.writeTextFile(join(local, "project", "src", "main.py"), "print('hi')\n");
  await sandbox.uploadDir(join(local, "project"), "/tmp/example/project");
  const listing = await sandbox.execute("cd /tmp/example/project && find . -type f | sort", {
    shell: true,
  });
  console.log(`directory: ${listing.stdout.trim().split("\n").join(" ")}`);

  const size = await sandbox.downloadToPath("/tmp/example/notes.txt", join(local, "notes.txt"));
  console.log(`downloaded: ${size} bytes`);
} finally {
  await Deno.remove(local, { recursive: true });
}
