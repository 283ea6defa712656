// openai_tools.test.mjs - function calling through trustgate with the official
// OpenAI Node.js client, unchanged: a tool call returned whole, the client's
// stream helper assembling tool-call deltas, its automatic tool runner going
// round trip (call, result, final answer), and a call a policy reserves for a
// person, which never reaches the client to execute.  The upstream is the
// fake in a real server's dialect (docs/UPSTREAMS.md), streamed and not.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { bin, control, start, stopAll } from './support.mjs';

const dir = mkdtempSync(join(tmpdir(), 'tg-tools-'));

const weather = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};
const approve = {
  type: 'function',
  function: { name: 'approve_loan', parameters: { type: 'object', properties: {} } },
};

async function gateway(upPort, name, stream) {
  const d = join(dir, name);
  writeFileSync(`${d}.yaml`, `
auth:
  api_keys:
    - name: node
      key: tg-node-key
backends:
  - name: primary
    type: openai
    base_url: http://127.0.0.1:${upPort}/v1
    stream: ${stream}
    header_timeout: 2s
route:
  backend: primary
policies:
  - id: loan-approval-tool
    description: 批贷是人的决定
    stage: post
    when: {tool.name: [approve_loan]}
    then: [{human_decision: {queue: credit, attestations: [已核实收入流水真实性]}}]
`);
  const [, port] = await start(`${bin}/trustgate`,
    ['serve', '-c', `${d}.yaml`, '--listen', '127.0.0.1:0', '--data', d],
    /serving on http:\/\/127\.0\.0\.1:(\d+)/);
  return new OpenAI({ apiKey: 'tg-node-key', baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });
}

async function flows(client, upPort, dialect) {
  const call = { name: 'get_weather', arguments: '{"city": "北京"}' };
  await control(upPort, 'reset', {});
  await control(upPort, 'default', { dialect });

  // 1. A whole completion with a tool call: content null, the call as written.
  await control(upPort, 'script', { steps: [{ dialect, tool_calls: [call] }] });
  const c = await client.chat.completions.create({
    model: 'fake-model', tools: [weather], tool_choice: 'auto',
    messages: [{ role: 'user', content: '北京天气如何？' }],
  });
  const m = c.choices[0].message;
  assert.equal(c.choices[0].finish_reason, 'tool_calls');
  assert.equal(m.content, null);
  assert.equal(m.tool_calls.length, 1);
  assert.equal(m.tool_calls[0].type, 'function');
  assert.equal(m.tool_calls[0].function.name, 'get_weather');
  assert.deepEqual(JSON.parse(m.tool_calls[0].function.arguments), { city: '北京' });
  assert.equal(c.trustgate.decision, 'deliver');

  // 2. The tool's result sent back: the conversation continues to an answer.
  const c2 = await client.chat.completions.create({
    model: 'fake-model', tools: [weather],
    messages: [{ role: 'user', content: '北京天气如何？' }, m,
      { role: 'tool', tool_call_id: m.tool_calls[0].id, content: '晴，25°C' }],
  });
  assert.equal(c2.choices[0].message.content, 'fake answer to: 北京天气如何？');

  // 3. Streaming with tools: the client's stream helper joins the deltas.
  await control(upPort, 'script', { steps: [{ dialect, tool_calls: [call, { name: 'get_weather', arguments: '{"city": "上海"}' }] }] });
  // (the helpers moved out of `beta` in later versions of the client)
  const completions = client.chat.completions.stream ? client.chat.completions
    : client.beta.chat.completions;
  const s = completions.stream({
    model: 'fake-model', tools: [weather], stream: true,
    messages: [{ role: 'user', content: '北京和上海天气如何？' }],
  });
  let deltas = 0;
  for await (const chunk of s) {
    if (chunk.choices[0]?.delta?.tool_calls) deltas++;
  }
  const fin = await s.finalChatCompletion();
  assert.ok(deltas >= 2, `tool calls come as deltas (${deltas})`);
  const calls = fin.choices[0].message.tool_calls;
  assert.deepEqual(calls.map((t) => JSON.parse(t.function.arguments).city), ['北京', '上海']);
  assert.equal(fin.choices[0].finish_reason, 'tool_calls');

  // 4. The client's tool runner: call, run the function, send the result, answer.
  const runTools = completions.runTools.bind(completions);
  await control(upPort, 'script', { steps: [{ dialect, tool_calls: [call] }] });
  const asked = [];
  const runner = runTools({
    model: 'fake-model',
    messages: [{ role: 'user', content: '查一下北京天气' }],
    tools: [{
      type: 'function',
      function: {
        name: 'get_weather', parameters: weather.function.parameters, parse: JSON.parse,
        function: (args) => { asked.push(args.city); return { sky: 'clear' }; },
      },
    }],
  });
  assert.equal(await runner.finalContent(), 'fake answer to: 查一下北京天气');
  assert.deepEqual(asked, ['北京']);

  // 5. A call only a person may make: held, nothing for the client to run.
  await control(upPort, 'script', { steps: [{ dialect, tool_calls: [{ name: 'approve_loan', arguments: '{"amount": 600000}' }] }] });
  const h = await client.chat.completions.create({
    model: 'fake-model', tools: [approve], messages: [{ role: 'user', content: '帮我把贷款批了' }],
  });
  assert.equal(h.trustgate.decision, 'human_decision');
  assert.equal(h.choices[0].message.tool_calls, undefined);
  assert.equal(h.trustgate.policy_hits[0].rule, 'loan-approval-tool');
}

async function main() {
  const [, upPort] = await start(`${bin}/fake-upstream`, ['--listen', '127.0.0.1:0'], /^(\d+)$/);
  const whole = await gateway(upPort, 'whole', false);
  const streamed = await gateway(upPort, 'stream', true);
  for (const dialect of ['openai', 'vllm', 'ollama', 'deepseek']) {
    await flows(whole, upPort, dialect);
    await flows(streamed, upPort, dialect);
  }
  console.log('openai client tools: all checks passed');
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
