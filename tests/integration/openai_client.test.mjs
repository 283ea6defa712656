// openai_client.test.mjs - the official OpenAI Node.js client, unchanged,
// against the real trustgate daemon in front of the fake upstream:
// completions, streaming, model listing and error mapping.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { bin, control, start, stopAll } from './support.mjs';

const dir = mkdtempSync(join(tmpdir(), 'tg-openai-'));

async function main() {
  const [, upPort] = await start(`${bin}/fake-upstream`, ['--listen', '127.0.0.1:0'], /^(\d+)$/);
  writeFileSync(join(dir, 'trustgate.yaml'), `
auth:
  api_keys:
    - name: node
      key: tg-node-key
backends:
  - name: primary
    type: openai
    base_url: http://127.0.0.1:${upPort}/v1
    stream: true
    header_timeout: 2s
route:
  backend: primary
models: [trustgate]
`);
  const [, gwPort] = await start(`${bin}/trustgate`,
    ['serve', '-c', join(dir, 'trustgate.yaml'), '--listen', '127.0.0.1:0', '--data', dir],
    /serving on http:\/\/127\.0\.0\.1:(\d+)/);
  const client = new OpenAI({ apiKey: 'tg-node-key', baseURL: `http://127.0.0.1:${gwPort}/v1`,
                              maxRetries: 0 });

  // 1. A plain completion, with the trustgate object beside the standard fields.
  const c = await client.chat.completions.create({
    model: 'trustgate', messages: [{ role: 'user', content: '你好，我想咨询理赔' }], user: 'node-1',
  });
  assert.equal(c.object, 'chat.completion');
  assert.equal(c.choices[0].message.role, 'assistant');
  assert.equal(c.choices[0].message.content, 'fake answer to: 你好，我想咨询理赔');
  assert.equal(c.choices[0].finish_reason, 'stop');
  assert.equal(c.trustgate.decision, 'deliver');
  assert.match(c.trustgate.turn_id, /^turn_/);
  assert.equal(typeof c.trustgate.audit_index, 'number');

  // 2. Streaming through the client's async iterator.
  const stream = await client.chat.completions.create({
    model: 'trustgate', stream: true,
    messages: [{ role: 'user', content: 'stream me a reasonably long answer please' }],
  });
  let text = '';
  let last = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.object, 'chat.completion.chunk');
    text += chunk.choices[0]?.delta?.content ?? '';
    last = chunk;
  }
  assert.ok(chunks >= 3, `expected several chunks, got ${chunks}`);
  assert.equal(text, 'fake answer to: stream me a reasonably long answer please');
  assert.equal(last.choices[0].finish_reason, 'stop');
  assert.equal(last.trustgate.decision, 'deliver');

  // 3. Models.
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), ['trustgate']);

  // 4. Errors map to the client's error classes.
  const bad = new OpenAI({ apiKey: 'nope', baseURL: `http://127.0.0.1:${gwPort}/v1`, maxRetries: 0 });
  await assert.rejects(bad.chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.AuthenticationError && e.status === 401 && e.code === 'invalid_api_key');
  await assert.rejects(client.chat.completions.create({ model: 'x', messages: [] }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && /must not be empty/.test(e.message));
  await control(upPort, 'script', { steps: [{ status: 503 }, { status: 503 }] });
  await assert.rejects(client.chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.APIError && e.status === 502 && /503/.test(e.message));
  await control(upPort, 'reset', {});
  await control(upPort, 'script', { steps: [{ cut_after: 1 }, { cut_after: 1 }] });
  await assert.rejects(client.chat.completions.create({ model: 'x', stream: true, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.APIError && e.status === 502);
  console.log('openai client: all checks passed');
}

let status = 0;
try {
  await main();
} catch (e) {
  console.error(e);
  status = 1;
} finally {
  stopAll();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(status);
