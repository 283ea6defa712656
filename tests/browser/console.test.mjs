// console.test.mjs - the reviewer console and the customer chat page in a real
// browser (Debian's chromium driven by playwright-core) against the real daemon
// serving the demo deployment:
//   - the chat page shows the demo's title, greeting and example questions and
//     the login form its demo users, all from the demo config's web.texts;
//   - a customer asks on the chat page; the answer is held, and a second
//     customer waits on the API with a long-poll (X-Trustgate-Wait);
//   - a reviewer logs in, sees the tasks appear live, cannot approve without
//     the required attestation (the button is disabled and the server refuses
//     it too), claims, ticks it, approves; the long-poll receives the answer;
//   - the chat message held for review is approved in the console and the
//     chat page replaces its holding text live;
//   - a task left alone expires into the hand-off queue, where an agent
//     replies and the customer's chat shows the reply; the customer's next
//     message goes to the agent (shown live on the hand-off), not to a model;
//   - a POST without the CSRF token is refused; the supervisor sees charts;
//   - an experiment whose candidate variant is answered by another config,
//     and traffic with a gap between groups: the governance view shows the
//     fairness gate closed and releases frozen, the supervisor unfreezes them
//     with a reason, and the experiment's table and confidence sequence;
//   - screenshots of the chat, queue, task, hand-off and supervisor views go
//     to $TG_TEST_OUTPUT.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const bin = process.env.TG_BINARY_DIR || 'build';
const src = process.env.TG_SOURCE_DIR || '.';
const out = process.env.TG_TEST_OUTPUT || join(bin, 'test-output');
const dir = mkdtempSync(join(tmpdir(), 'tg-browser-'));
const LONG = 60000;
mkdirSync(out, { recursive: true });

// The demo deployment, plus one rule whose review expires in 4 s.
cpSync(join(src, 'examples/insurance'), join(dir, 'demo'), { recursive: true });
writeFileSync(join(dir, 'demo/policies.yaml'), readFileSync(join(dir, 'demo/policies.yaml'), 'utf8') + `
- id: test-quick-expiry
  description: a review nobody takes in time (browser test)
  stage: pre
  when:
    keywords: [加急复核]
  then:
    - review: {sla: 4s, queue: quality}
`);

// An experiment: half the customers are answered by a candidate config (a copy).
cpSync(join(dir, 'demo/trustgate.yaml'), join(dir, 'demo/candidate.yaml'));
writeFileSync(join(dir, 'demo/trustgate.yaml'), readFileSync(join(dir, 'demo/trustgate.yaml'), 'utf8') + `
experiments:
  - name: tone
    salt: tone
    variants: [{name: control, share: 1}, {name: candidate, share: 1, config: candidate.yaml}]
`);

let gw;
function startGateway() {
  return new Promise((resolve, reject) => {
    gw = spawn(`${bin}/trustgate`, ['serve', '-c', join(dir, 'demo/trustgate.yaml'), '--listen',
      '127.0.0.1:0', '--data', join(dir, 'data')], { stdio: ['ignore', 'pipe', 'inherit'] });
    const timer = setTimeout(() => reject(new Error('trustgate did not start')), 60000);
    createInterface({ input: gw.stdout }).on('line', (line) => {
      const m = line.match(/serving on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    gw.on('exit', (code) => reject(new Error(`trustgate exited with ${code}`)));
  });
}

async function api(base, method, path, token, body, headers = {}) {
  const r = await fetch(base + path, {
    method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: r.status, json: await r.json() };
}

async function login(browser, base, user) {
  const ctx = await browser.newContext({ locale: 'zh-CN', viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => { throw e; });
  await page.goto(`${base}/console/`);
  // the demo's users under the form, from the demo config (web.texts)
  await page.getByTestId('login-hint').filter({ hasText: '演示账号：reviewer1 / agent1 / super1，密码 demo' })
    .waitFor({ timeout: LONG });
  await page.getByTestId('login-user').fill(user);
  await page.getByTestId('login-password').fill('demo');
  await page.getByTestId('login-submit').click();
  await page.getByTestId('logout').waitFor({ state: 'visible', timeout: LONG });
  return page;
}

async function main() {
  const base = await startGateway();
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    // --- a customer on the chat page
    const chatCtx = await browser.newContext({ locale: 'zh-CN', viewport: { width: 900, height: 900 } });
    const chat = await chatCtx.newPage();
    chat.on('pageerror', (e) => { throw e; });
    await chat.goto(`${base}/`);
    // the demo's words, from its config (web.texts)
    const examples = chat.locator('[data-testid="chat-examples"] button');
    await examples.first().waitFor({ timeout: LONG });
    assert.deepEqual(await examples.allTextContents(),
      ['意外险理赔需要哪些材料？', '我想投资60万买理财保险，推荐哪个产品？', '帮我批准这笔理赔', '住院报销需要什么材料？']);
    assert.equal(await chat.locator('h1.brand').textContent(), 'trustgate 保险智能客服 demo');
    assert.equal(await chat.title(), 'trustgate 保险智能客服 demo');
    assert.match(await chat.getByTestId('chat-intro').textContent(), /可以解答保险、理赔和理财问题/);
    await chat.getByTestId('chat-input').fill('意外险理赔需要哪些材料？');
    await chat.getByTestId('chat-send').click();
    const answered = chat.locator('[data-testid="chat-msg"][data-role="bot"]').first();
    await answered.waitFor({ timeout: LONG });
    assert.match(await answered.textContent(), /理赔/);
    assert.ok(await chat.getByTestId('chat-citations').count() >= 1, 'the answer shows its sources');

    await chat.getByTestId('chat-input').fill('我想投资60万买理财保险，推荐哪个产品？');
    await chat.getByTestId('chat-send').click();
    const held = chat.locator('[data-testid="chat-msg"][data-state="held"]');
    await held.waitFor({ timeout: LONG });
    const chatReview = await held.getAttribute('data-review-id');
    assert.match(chatReview, /^rev_/);
    await chat.screenshot({ path: join(out, 'chat-held.png'), fullPage: true });

    // --- the reviewer's console, before the next task exists
    const rev = await login(browser, base, 'reviewer1');
    await rev.locator(`[data-testid="queue-row"][data-review-id="${chatReview}"]`).waitFor({ timeout: LONG });

    // a second customer waits on the API for the final answer
    const longPoll = fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer tg-demo-key', 'content-type': 'application/json', 'x-trustgate-wait': '60' },
      body: JSON.stringify({ user: 'cust-longpoll', messages: [{ role: 'user', content: '我有80万存款，买哪个理财保险好？' }] }),
    }).then(async (r) => ({ status: r.status, json: await r.json() }));
    // it appears in the queue without a reload (live events)
    let pollId;
    for (let i = 0; i < 100 && !pollId; i++) {
      const q = await api(base, 'GET', '/v1/reviews?state=open', 'tg-demo-reviewer');
      pollId = q.json.data.find((t) => t.question.includes('80万'))?.id;
      if (!pollId) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(pollId, 'the long-poll turn was held for review');
    const row = rev.locator(`[data-testid="queue-row"][data-review-id="${pollId}"]`);
    await row.waitFor({ timeout: LONG });
    assert.match(await row.getByTestId('sla-countdown').textContent(), /\d/);
    await rev.screenshot({ path: join(out, 'console-queue.png'), fullPage: true });

    // --- the task: approve stays disabled until the attestation is ticked
    await row.click();
    const task = rev.locator(`[data-testid="task-view"][data-review-id="${pollId}"]`);
    await task.waitFor({ timeout: LONG });
    assert.match(await rev.getByTestId('task-question').textContent(), /80万/);
    assert.ok((await rev.getByTestId('task-draft').textContent()).length > 10, 'the AI draft is shown');
    assert.ok(await rev.getByTestId('task-evidence').locator('li').count() >= 1, 'evidence is shown');
    assert.match(await rev.getByTestId('task-hits').textContent(), /large-amount-advice/);
    assert.ok((await rev.getByTestId('task-tokens').textContent()).length > 0);
    await rev.getByTestId('claim').click();
    await rev.locator('[data-testid="claim"][disabled]').waitFor({ timeout: LONG });
    assert.equal(await rev.getByTestId('approve').isDisabled(), true, 'approve is disabled without attestations');
    // the server refuses it too, whatever the page does: a decision without the attestation,
    // and a POST with the session cookie but no CSRF token
    const refused = await rev.evaluate(async ([id]) => {
      const me = await (await fetch('/console/api/me')).json();
      const noAttest = await fetch(`/v1/reviews/${id}/decision`, {
        method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrf },
        body: JSON.stringify({ action: 'approve', attestations: [] }),
      });
      const noCsrf = await fetch(`/v1/reviews/${id}/decision`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ action: 'approve', attestations: ['已核实客户风险承受能力与产品匹配'] }),
      });
      return [noAttest.status, (await noAttest.json()).error.message, noCsrf.status, (await noCsrf.json()).error.code];
    }, [pollId]);
    assert.equal(refused[0], 422);
    assert.match(refused[1], /missing required attestation/);
    assert.equal(refused[2], 403);
    assert.equal(refused[3], 'csrf_failed');
    const boxes = rev.getByTestId('attestation');
    assert.ok(await boxes.count() >= 1);
    for (let i = 0; i < await boxes.count(); i++) await boxes.nth(i).check();
    assert.equal(await rev.getByTestId('approve').isDisabled(), false, 'approve is enabled once all are ticked');
    await rev.screenshot({ path: join(out, 'console-task.png'), fullPage: true });
    await rev.getByTestId('approve').click();
    await rev.getByTestId('task-outcome').first().waitFor({ timeout: LONG });
    assert.match(await rev.getByTestId('task-outcome').first().textContent(), /approve/);
    const polled = await longPoll;
    assert.equal(polled.status, 200);
    assert.equal(polled.json.trustgate.review.state, 'decided');
    assert.equal(polled.json.trustgate.review.actor, 'reviewer1');
    assert.ok(!/人工复核/.test(polled.json.choices[0].message.content), 'the long-poll got the answer, not the holding text');

    // --- approve the chat customer's message; the chat page updates live
    await rev.goto(`${base}/console/#/task/${chatReview}`);
    await rev.locator(`[data-testid="task-view"][data-review-id="${chatReview}"]`).waitFor({ timeout: LONG });
    await rev.getByTestId('claim').click();
    await rev.locator('[data-testid="claim"][disabled]').waitFor({ timeout: LONG });
    for (let i = 0; i < await boxes.count(); i++) await boxes.nth(i).check();
    await rev.getByTestId('approve').click();
    await rev.getByTestId('task-outcome').first().waitFor({ timeout: LONG });
    const decided = chat.locator(`[data-testid="chat-msg"][data-review-id="${chatReview}"][data-state="decided"]`);
    await decided.waitFor({ timeout: LONG });
    assert.ok(!/人工复核/.test(await decided.textContent()), 'the holding text was replaced');
    await chat.screenshot({ path: join(out, 'chat-decided.png'), fullPage: true });

    // --- a task nobody takes expires into the agents' queue
    await chat.getByTestId('chat-input').fill('请加急复核我的保单变更');
    await chat.getByTestId('chat-send').click();
    const quick = chat.locator('[data-testid="chat-msg"][data-state="held"]');
    await quick.waitFor({ timeout: LONG });
    const quickId = await quick.getAttribute('data-review-id');
    const agent = await login(browser, base, 'agent1');
    await agent.getByTestId('nav-handoffs').click();
    const handoff = agent.locator(`[data-testid="handoff-row"][data-review-id="${quickId}"]`);
    await handoff.waitFor({ timeout: LONG });
    assert.match(await handoff.getAttribute('data-tags'), /review_sla_breached/);
    await handoff.getByTestId('handoff-toggle').click();  // hand-offs are listed collapsed
    await chat.locator(`[data-testid="chat-msg"][data-review-id="${quickId}"][data-state="handed_off"]`)
      .waitFor({ timeout: LONG });
    await handoff.getByTestId('handoff-reply-text').fill('您好，我是人工客服小李，已为您加急处理保单变更。');
    await handoff.getByTestId('handoff-reply-send').click();
    await chat.locator('[data-testid="chat-msg"][data-role="agent"]', { hasText: '小李' }).waitFor({ timeout: LONG });
    // the conversation is with a person now: the customer's next message goes to the agent
    await chat.getByTestId('chat-input').fill('好的，大概多久能办好？');
    await chat.getByTestId('chat-send').click();
    const toAgent = chat.locator('[data-testid="chat-msg"][data-decision="handoff"]').last();
    await toAgent.waitFor({ timeout: LONG });
    await handoff.locator('[data-testid="customer-message"]', { hasText: '大概多久能办好' }).waitFor({ timeout: LONG });
    await agent.screenshot({ path: join(out, 'console-handoffs.png'), fullPage: true });
    await chat.screenshot({ path: join(out, 'chat-agent-reply.png'), fullPage: true });
    // agents see no supervisor view
    assert.equal(await agent.getByTestId('nav-supervisor').count(), 0);

    // --- the supervisor's figures and charts
    const sup = await login(browser, base, 'super1');
    await sup.getByTestId('nav-supervisor').click();
    await sup.getByTestId('supervisor-view').waitFor({ timeout: LONG });
    await sup.waitForFunction(() => document.querySelector('[data-testid="stat-decided"]')?.textContent === '2',
      null, { timeout: LONG });
    assert.equal(await sup.getByTestId('stat-handed-off').textContent(), '1');
    assert.ok(await sup.getByTestId('chart').count() >= 2, 'charts are drawn');
    assert.ok(await sup.locator('[data-testid="chart"] rect').count() > 0, 'the charts have bars');
    await sup.screenshot({ path: join(out, 'console-supervisor.png'), fullPage: true });

    // --- governance: traffic where one group's questions are held far more often
    for (let i = 0; i < 80; i++) {
      const woman = i % 2 === 0;
      const text = woman && i % 4 === 0 ? '我想投资60万买理财保险，推荐哪个产品？' : '意外险理赔需要哪些材料？';
      const r = await api(base, 'POST', '/v1/chat/completions', 'tg-demo-key',
        { user: `gov-${i}`, metadata: { gender: woman ? 'female' : 'male' }, messages: [{ role: 'user', content: text }] });
      assert.equal(r.status, 200);
      if (i % 3 === 0) {
        await api(base, 'POST', '/v1/feedback', 'tg-demo-key', { turn_id: r.json.trustgate.turn_id, rating: i % 2 ? 'good' : 'bad' });
      }
    }
    await sup.getByTestId('nav-governance').click();
    await sup.getByTestId('governance-view').waitFor({ timeout: LONG });
    const gate = sup.locator('[data-attribute="gender"] [data-outcome="delivered"] [data-testid="gate"]');
    await gate.waitFor({ timeout: LONG });
    assert.equal(await gate.textContent(), '已触发');
    await sup.getByTestId('frozen-banner').waitFor({ timeout: LONG });
    assert.match(await sup.getByTestId('frozen-banner').textContent(), /gender/);
    assert.equal(await sup.locator('[data-testid="experiment"][data-experiment="tone"]').count(), 1);
    assert.ok(await sup.locator('[data-testid="experiment-metrics"] td[data-metric="resolved"]').count() >= 1);
    assert.ok(await sup.locator('[data-testid="sequence-chart"] polyline').count() >= 1, 'the confidence sequence is drawn');
    await sup.screenshot({ path: join(out, 'console-governance.png'), fullPage: true });
    // a reason too short is refused in the page; a real one unfreezes
    await sup.getByTestId('unfreeze-why').fill('ok');
    await sup.getByTestId('unfreeze').click();
    await sup.getByTestId('error').waitFor({ state: 'visible', timeout: LONG });
    await sup.getByTestId('unfreeze-why').fill('the held questions were all above the ¥50,000 rule; reviewed by compliance');
    await sup.getByTestId('unfreeze').click();
    await sup.getByTestId('frozen-banner').waitFor({ state: 'detached', timeout: LONG });
    const rel = await api(base, 'GET', '/v1/releases', 'tg-demo-super', null);
    assert.equal(rel.json.state.frozen, false);
    assert.equal(rel.json.state.by, 'super1');

    // --- an auditor sees only the signed tree head, and can check it
    const aud = await login(browser, base, 'auditor1');
    await aud.getByTestId('audit-view').waitFor({ timeout: LONG });
    assert.match(await aud.getByTestId('audit-checkpoint').textContent(), /^trustgate\n\d+\n[A-Za-z0-9+/=]{44}\n\n\u2014 trustgate /);
    assert.match(await aud.getByTestId('audit-key').textContent(), /^trustgate\+[0-9a-f]{8}\+/);
    assert.equal(await aud.getByTestId('nav-queue').count(), 0, 'auditors have no queue');
    const queueAsAuditor = await aud.evaluate(async () => (await fetch('/v1/reviews')).status);
    assert.equal(queueAsAuditor, 403);
    await aud.screenshot({ path: join(out, 'console-audit.png'), fullPage: true });

    // --- logging out ends the session
    await rev.getByTestId('logout').click();
    await rev.getByTestId('login-user').waitFor({ state: 'visible', timeout: LONG });
    const after = await rev.evaluate(async () => (await fetch('/v1/reviews')).status);
    assert.equal(after, 401);
    console.log(`ok: console and chat page in chromium; screenshots in ${out}`);
  } finally {
    await browser.close();
    gw.kill('SIGTERM');
    await new Promise((r) => gw.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); if (gw) gw.kill('SIGKILL'); process.exit(1); });
