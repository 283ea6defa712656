// support.mjs - what the Node.js integration tests share: starting the
// gateway and the fake upstream as children and reading their ports,
// steering the fake upstream, and stopping every child at the end.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export const bin = process.env.TG_BINARY_DIR || 'build';
const children = [];

// Start a program and resolve with the first stdout line matching re.
export function start(cmd, args, re) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    const timer = setTimeout(() => reject(new Error(`${cmd} did not start`)), 10000);
    const rl = createInterface({ input: child.stdout });
    rl.on('line', (line) => {
      const m = line.match(re);
      if (m) { clearTimeout(timer); resolve(m); }
    });
    child.on('exit', (code) => reject(new Error(`${cmd} exited with ${code}`)));
  });
}

// POST body to the fake upstream's /_control/<what>; it must accept it.
export async function control(port, what, body) {
  const r = await fetch(`http://127.0.0.1:${port}/_control/${what}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  assert.equal(r.status, 200, await r.text());
}

// Stop every child started here.
export function stopAll() {
  for (const c of children) c.kill('SIGTERM');
}
