// support.mjs - what the browser tests share: the demo daemon started as a
// child on a free port, and calls to its API with a bearer token.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

// Start `trustgate serve` on config with its data in data; resolves with
// {proc, base} once it says where it serves, rejects after timeoutMs.
export function startDaemon(bin, config, data, timeoutMs) {
  return new Promise((resolve, reject) => {
    const proc = spawn(`${bin}/trustgate`, ['serve', '-c', config, '--listen', '127.0.0.1:0', '--data', data],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    const timer = setTimeout(() => reject(new Error('trustgate did not start')), timeoutMs);
    createInterface({ input: proc.stdout }).on('line', (line) => {
      const m = line.match(/serving on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) { clearTimeout(timer); resolve({ proc, base: m[1] }); }
    });
    proc.on('exit', (code) => reject(new Error(`trustgate exited with ${code}`)));
  });
}

// One API call: {status, json}.
export async function api(base, method, path, token, body) {
  const r = await fetch(base + path, {
    method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: r.status, json: await r.json() };
}
