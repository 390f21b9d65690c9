async function time(url: string) {
  const t = performance.now();
  for (let i = 0; i < 3000; i++) {
    const r = await fetch(url, {
      method: "POST",
      body: '{"sandbox_id":"x","command":"true"}',
      headers: { "content-type": "application/json" },
    });
    await r.text();
  }
  return ((performance.now() - t) / 3000).toFixed(3);
}
const [a, b] = Deno.args;
for (let i = 0; i < 3; i++) {
  console.log(
    "no-override",
    await time(`http://127.0.0.1:${a}/x`),
    "override",
    await time(`http://127.0.0.1:${b}/x`),
  );
}
