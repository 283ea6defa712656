// console_view.test.mjs - what a reviewer sees, in a real browser (Debian's
// chromium driven by playwright-core) against the real daemon serving the demo
// deployment, on a 1440 px desktop and a 390 px phone:
//   - a policy hit names the fact that fired it: the amount rule's trigger
//     reads 金额 ¥600,000 “60万”, never the classifier's `intent = 0.786…`;
//   - tags, events, rule ids and queues appear in the interface's language
//     from the config's `labels:` (served by GET /console/api/labels), and in
//     English after the language toggle;
//   - the intent explanation lists at most five tokens, none twice and none
//     a lone number or numeral unit (0, 万, 0万);
//   - knowledge-base Markdown is rendered as elements (headings, lists, bold,
//     tables) in the evidence and the source viewer, and markup inside a
//     passage stays text (no element, no script run);
//   - the chat page shows no source chip under a held answer, at most the
//     cited one under a delivered answer, and the chips wrap inside the
//     bubble on a phone;
//   - hand-offs are one line each, ordered by urgency (a VIP customer's first
//     although it is the oldest), open on click, and paged past 20;
//   - the supervisor's chart ticks are whole numbers, each different;
//   - the console's ES modules (every web/console/*.js) are served as JavaScript
//     and load with no console error or uncaught exception on the queue, a
//     task, the hand-offs and the supervisor view;
//   - `trustgate config check` reports a malformed `labels:` with file:line.
// Screenshots go to $TG_TEST_OUTPUT (console-task-desktop.png,
// console-task-phone.png, chat-phone.png, console-handoffs-collapsed.png,
// console-handoffs-phone.png, console-supervisor-ticks.png).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { api, startDaemon } from './support.mjs';

const bin = process.env.TG_BINARY_DIR || 'build';
const src = process.env.TG_SOURCE_DIR || '.';
const out = process.env.TG_TEST_OUTPUT || join(bin, 'test-output');
const dir = mkdtempSync(join(tmpdir(), 'tg-console-view-'));
const LONG = 60000;
const HANDOFFS = 23;  // more than one page of 20
mkdirSync(out, { recursive: true });

// The demo deployment, plus a document written in Markdown (with markup that
// must stay text), a rule holding questions about it, and a rule whose
// reviews expire into hand-offs at once.
cpSync(join(src, 'examples/insurance'), join(dir, 'demo'), { recursive: true });
writeFileSync(join(dir, 'demo/kb/zz-browser-markdown.md'), `# 安心测试险

安心测试险是浏览器测试用的产品说明，**只用于测试**。

## 适合谁

安心测试险适合下面这些人：

- **上班族**：通勤路上的意外；
- 学生：校园内外的意外。

投保安心测试险的步骤：

1. 阅读安心测试险条款；
2. 在 App 投保安心测试险。

| 计划 | 保额 |
|---|---|
| 基础 | 10万元 |

安心测试险说明 <img src=x onerror="window.__pwned=1"> <script>window.__pwned=1</script> 以条款为准。
`);
writeFileSync(join(dir, 'demo/policies.yaml'), readFileSync(join(dir, 'demo/policies.yaml'), 'utf8') + `
- id: test-markdown-review
  description: 测试文档的问题须人工复核（浏览器测试）
  stage: pre
  when:
    keywords: [安心测试险]
  then:
    - review: {sla: 10m, queue: quality}
- id: test-handoff-now
  description: 一秒内无人复核即转人工（浏览器测试）
  stage: pre
  when:
    keywords: [加急交接测试]
  then:
    - review: {sla: 1s, queue: quality}
`);

let gw;
async function startGateway() {
  const g = await startDaemon(bin, join(dir, 'demo/trustgate.yaml'), join(dir, 'data'), LONG);
  gw = g.proc;
  return g.base;
}


const ask = (base, user, content, metadata) => api(base, 'POST', '/v1/chat/completions', 'tg-demo-key',
  { user, metadata, messages: [{ role: 'user', content }] });

const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };
const DESKTOP = { viewport: { width: 1440, height: 900 } };

// What a console page reported: console errors and uncaught exceptions, and each script it
// loaded (path -> [status, Content-Type]).
const watched = new Map();
function watch(page) {
  const w = { errors: [], scripts: new Map(), signedIn: false };
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    // before signing in, GET /console/api/me answers 401: how the page learns nobody is signed in
    if (!w.signedIn && /status of 401/.test(m.text()) && m.location().url.endsWith('/console/api/me')) return;
    w.errors.push(`${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => w.errors.push(`uncaught: ${e.message}`));
  page.on('response', (r) => {
    if (r.request().resourceType() === 'script') w.scripts.set(new URL(r.url()).pathname, [r.status(), r.headers()['content-type']]);
  });
  watched.set(page, w);
}

// The console's modules all loaded, as JavaScript, and nothing went wrong on the view shown.
const CONSOLE_MODULES = readdirSync(join(src, 'web/console')).filter((f) => f.endsWith('.js')).map((f) => `/console/${f}`);
function assertClean(page, what) {
  const w = watched.get(page);
  assert.deepEqual(w.errors, [], `${what}: no console error`);
  for (const m of CONSOLE_MODULES) assert.ok(w.scripts.has(m), `${what}: ${m} loaded`);
  for (const [path, [status, type]] of w.scripts) {
    assert.ok(status === 200 || status === 304, `${path}: HTTP ${status}`);
    assert.match(type || '', /^text\/javascript/, `${path} is served as JavaScript`);
  }
}

async function login(browser, base, user, screen) {
  const ctx = await browser.newContext({ locale: 'zh-CN', ...screen });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => { throw e; });
  watch(page);
  await page.goto(`${base}/console/`);
  await page.getByTestId('login-user').fill(user);
  await page.getByTestId('login-password').fill('demo');
  await page.getByTestId('login-submit').click();
  await page.getByTestId('logout').waitFor({ state: 'visible', timeout: LONG });
  watched.get(page).signedIn = true;
  return page;
}

// Nothing on the page is wider than the screen.
async function assertNoOverflow(page, what) {
  const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  assert.ok(scroll <= width, `${what}: the page is ${scroll} px wide on a ${width} px screen`);
}

// --- the task of the ¥600,000 question, as a reviewer sees it
async function checkTask(page, id, shot, phone) {
  await page.goto(`${page.url().split('#')[0]}#/task/${id}`);
  const task = page.locator(`[data-testid="task-view"][data-review-id="${id}"]`);
  await task.waitFor({ timeout: LONG });

  // the trigger is the amount, formatted, with the words it came from
  const trig = task.locator('[data-testid="task-hits"] li[data-rule="large-amount-advice"] [data-testid="task-trigger"]');
  await trig.waitFor({ timeout: LONG });
  const trigText = await trig.textContent();
  assert.match(trigText, /¥600,000/, trigText);
  assert.match(trigText, /60万/, trigText);
  assert.doesNotMatch(trigText, /intent|0\.78/, trigText);
  assert.equal(await trig.getAttribute('data-field'), 'money');
  assert.match(await page.getByTestId('task-why').textContent(), /¥600,000/);
  assert.equal(await task.locator('[data-testid="task-question"] mark', { hasText: '60万' }).count(), 1, 'the amount is marked in the question');

  // labels from the config, in Chinese: tags, rule, queue, events
  const tag = task.locator('.taskhead [data-tag="large_amount"]');
  assert.equal(await tag.textContent(), '大额理财建议');
  assert.equal(await tag.getAttribute('title'), 'large_amount');
  const rule = task.locator('li[data-rule="large-amount-advice"] .rule');
  assert.equal(await rule.textContent(), '超过5万元的理财建议');
  assert.equal(await task.locator('.taskhead .badge.queue').textContent(), '理财');
  assert.equal(await task.locator('[data-event="created"]').first().textContent(), '创建');
  assert.doesNotMatch(await task.locator('.taskhead .tags').textContent(), /large_amount|low_confidence/);

  // the intent explanation: a few tokens, deduplicated, no numbers
  const toks = await task.locator('[data-testid="intent-token"] .tok').allTextContents();
  assert.ok(toks.length >= 1 && toks.length <= 5, `tokens: ${toks}`);
  assert.equal(new Set(toks).size, toks.length, `no token twice: ${toks}`);
  for (const k of toks) assert.doesNotMatch(k, /^[\d万千百亿元\s]*$/, `noise token ${k}`);
  assert.match(await task.getByTestId('task-intent').textContent(), /^理财建议|^产品推荐|^理财产品咨询/, 'the intent in Chinese');

  if (phone) {
    await assertNoOverflow(page, 'the task on a phone');
    // the decision panel comes before the evidence on a phone
    const decideY = (await task.locator('.decide').boundingBox()).y;
    const evidenceY = (await task.locator('.b-evidence').boundingBox()).y;
    assert.ok(decideY < evidenceY, 'a reviewer on a phone reaches the decision before the evidence');
  } else {
    // two columns on a desktop: the hits beside the question
    const q = await task.locator('.b-question').boundingBox(), hits = await task.locator('.b-hits').boundingBox();
    assert.ok(hits.x > q.x + q.width - 1, 'the hits are beside the question');
  }
  await page.screenshot({ path: join(out, shot), fullPage: true });
}

async function main() {
  // a malformed label table is refused with its file and line
  writeFileSync(join(dir, 'bad.yaml'), `backends:
  - {name: b, type: script, reply: hi}
route: {backend: b}
labels:
  zh:
    credit_decision: ""
    medical: 医疗相关
  x_y: {a: b}
  en: just a text
`);
  const check = spawnSync(`${bin}/trustgate`, ['config', 'check', join(dir, 'bad.yaml')], { encoding: 'utf8' });
  const errs = check.stdout + check.stderr;
  assert.equal(check.status, 1, errs);
  assert.ok(errs.includes('bad.yaml:6: labels.zh.credit_decision must be a non-empty text'), errs);
  assert.ok(errs.includes("bad.yaml:8: labels: 'x_y' is not a language tag"), errs);
  assert.ok(errs.includes('bad.yaml:9: labels.en must be a mapping'), errs);
  assert.ok(!errs.includes('bad.yaml:7'), errs);

  const base = await startGateway();
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    // the label table is served to people signed in, and only to them
    const lab = await api(base, 'GET', '/console/api/labels', 'tg-demo-reviewer');
    assert.equal(lab.status, 200);
    assert.equal(lab.json.labels.zh.credit_decision, '信贷决定');
    assert.equal(lab.json.labels.en.credit_decision, 'credit decision');
    assert.equal((await fetch(`${base}/console/api/labels`)).status, 401);

    // --- a customer on a phone: no chips under a held answer, the cited one under an answer
    const chatCtx = await browser.newContext({ locale: 'zh-CN', ...PHONE });
    const chat = await chatCtx.newPage();
    chat.on('pageerror', (e) => { throw e; });
    await chat.goto(`${base}/`);
    await chat.getByTestId('chat-input').fill('我想投资60万买理财保险，推荐哪个产品？');
    await chat.getByTestId('chat-send').click();
    const held = chat.locator('[data-testid="chat-msg"][data-state="held"]');
    await held.waitFor({ timeout: LONG });
    const taskId = await held.getAttribute('data-review-id');
    assert.equal(await held.getByTestId('chat-citations').count(), 0, 'no source chips under a held answer');
    await chat.getByTestId('chat-input').fill('意外险理赔需要哪些材料？');
    await chat.getByTestId('chat-send').click();
    const answer = chat.locator('[data-testid="chat-msg"][data-role="bot"]').nth(1);
    await answer.waitFor({ timeout: LONG });
    assert.equal(await answer.getAttribute('data-decision'), 'deliver', 'the demo answers this one');
    const chips = answer.locator('[data-testid="chat-citations"] .chip');
    const nChips = await chips.count();
    assert.ok(nChips <= 1, `at most the cited source under an answer, not every passage retrieved (${nChips})`);
    const bubble = await answer.boundingBox();
    for (let i = 0; i < nChips; i++) {
      const c = await chips.nth(i).boundingBox();
      assert.ok(c.x + c.width <= bubble.x + bubble.width + 0.5, 'a chip stays inside its bubble');
    }
    await assertNoOverflow(chat, 'the chat page on a phone');
    // the header's controls keep their words on one line (the connection state, the console link)
    for (const sel of ['.topbar .conn', '.topbar a']) {
      const box = await chat.locator(sel).boundingBox();
      assert.ok(box && box.height < 28, `${sel} on one line on a phone (${box?.height}px high)`);
    }
    await chat.screenshot({ path: join(out, 'chat-phone.png'), fullPage: true });

    // --- the task on a 1440 px desktop and on a 390 px phone
    const desk = await login(browser, base, 'reviewer1', DESKTOP);
    await desk.getByTestId('queue-table').waitFor({ timeout: LONG });
    assertClean(desk, 'the queue');
    await checkTask(desk, taskId, 'console-task-desktop.png', false);
    assertClean(desk, 'a task');
    const phone = await login(browser, base, 'reviewer1', PHONE);
    await checkTask(phone, taskId, 'console-task-phone.png', true);

    // decided now, so it never expires into the hand-offs below
    assert.equal((await api(base, 'POST', `/v1/reviews/${taskId}/claim`, 'tg-demo-reviewer')).status, 200);
    const approved = await api(base, 'POST', `/v1/reviews/${taskId}/decision`, 'tg-demo-reviewer',
      { action: 'approve', attestations: ['已核实客户风险承受能力与产品匹配'] });
    assert.equal(approved.status, 200, JSON.stringify(approved.json));

    // in English, the same codes in English
    await desk.getByTestId('lang-toggle').click();
    await desk.locator('.taskhead [data-tag="large_amount"]', { hasText: 'large-amount advice' }).waitFor({ timeout: LONG });
    assert.match(await desk.locator('[data-testid="task-trigger"][data-field="money"]').first().textContent(), /amount ¥600,000/);
    await desk.getByTestId('lang-toggle').click();

    // --- Markdown evidence, rendered safely
    const md = await ask(base, 'cust-md', '安心测试险适合谁？投保步骤是什么？');
    assert.equal(md.json.trustgate.decision, 'review');
    const mdId = md.json.trustgate.review_id;
    await desk.goto(`${base}/console/#/task/${mdId}`);
    const mdTask = desk.locator(`[data-testid="task-view"][data-review-id="${mdId}"]`);
    await mdTask.waitFor({ timeout: LONG });
    const ev = mdTask.getByTestId('task-evidence');
    await ev.locator('[data-testid="evidence-text"]').first().waitFor({ timeout: LONG });
    const evText = await ev.textContent();
    assert.doesNotMatch(evText, /\*\*|^\s*- /m, 'no raw Markdown in the evidence');
    assert.ok(await ev.locator('[data-testid="evidence-text"] li').count() >= 2, 'list items are elements');
    assert.ok(await ev.locator('[data-testid="evidence-text"] strong').count() >= 1, 'bold is an element');
    assert.equal(await ev.locator('img, script').count(), 0, 'markup in a passage stays text');
    // the source viewer renders the whole document the same way
    await ev.locator('a', { hasText: '安心测试险' }).first().click();
    const source = desk.locator('#source');
    await source.locator('h4', { hasText: '适合谁' }).waitFor({ timeout: LONG });
    const srcText = await source.textContent();
    assert.doesNotMatch(srcText, /## |\*\*/, 'no raw Markdown in the source viewer');
    assert.ok(await source.locator('table td', { hasText: '10万元' }).count() === 1, 'a table is a table');
    assert.ok(await source.locator('ol li').count() === 2, 'a numbered list is a list');
    assert.match(srcText, /<img src=x onerror=/, 'markup is shown as text');
    assert.equal(await source.locator('img, script').count(), 0);
    assert.equal(await desk.evaluate(() => window.__pwned), undefined, 'nothing in a passage ran');
    await desk.screenshot({ path: join(out, 'console-markdown.png'), fullPage: true });
    await desk.locator('#source-close').click();

    // --- hand-offs: a VIP customer's first (the oldest), then more than a page of others
    const vip = await ask(base, 'cust-vip', '加急交接测试：VIP 客户的保单变更', { tier: 'vip' });
    const vipId = vip.json.trustgate.review_id;
    const others = [];
    for (let i = 0; i < HANDOFFS - 1; i++) {
      others.push((await ask(base, `cust-h${i}`, `加急交接测试：第${i + 1}位客户的保单变更`)).json.trustgate.review_id);
    }
    let total = 0;
    for (let i = 0; i < 200; i++) {  // every SLA of 1 s expires into the agents' queue
      const l = await api(base, 'GET', '/v1/handoffs?limit=500', 'tg-demo-agent');
      total = l.json.data.length;
      if (l.json.data.filter((x) => [vipId, ...others].includes(x.id)).length === HANDOFFS) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(total >= HANDOFFS);
    const agent = await login(browser, base, 'agent1', DESKTOP);
    await agent.getByTestId('nav-handoffs').click();
    const rows = agent.getByTestId('handoff-row');
    await rows.first().waitFor({ timeout: LONG });
    await agent.getByTestId('handoff-page').waitFor({ timeout: LONG });
    assert.equal(await rows.count(), 20, 'twenty hand-offs a page');
    assert.equal(await agent.getByTestId('handoff-page').textContent(), `第 1–20 条，共 ${total} 条`);
    assert.equal(await rows.first().getAttribute('data-review-id'), vipId, 'the VIP customer first, though the oldest');
    // then the longest overdue: this test's hand-offs in the order they were made
    const ids = (await rows.evaluateAll((rs) => rs.map((r) => r.dataset.reviewId))).filter((id) => others.includes(id));
    assert.deepEqual(ids, others.slice(0, ids.length), 'the longest overdue first');
    assert.ok(ids.length >= 15);
    // collapsed: one line each, no reply box until opened
    for (let i = 0; i < 20; i++) {
      const b = await rows.nth(i).boundingBox();
      assert.ok(b.height < 56, `hand-off ${i} is one line (${b.height} px)`);
    }
    assert.equal(await agent.getByTestId('handoff-reply-text').count(), 0, 'no reply box on a closed hand-off');
    assert.match(await rows.first().getByTestId('handoff-due').textContent(), /超时/);
    const pageHeight = await agent.evaluate(() => document.documentElement.scrollHeight);
    assert.ok(pageHeight < 1800, `the hand-off page is short (${pageHeight} px)`);
    await agent.screenshot({ path: join(out, 'console-handoffs-collapsed.png'), fullPage: true });
    // a click opens one with its context and the reply box; it stays open across refreshes
    await rows.nth(1).getByTestId('handoff-toggle').click();
    const opened = agent.locator(`[data-testid="handoff-row"][data-review-id="${others[0]}"]`);
    await opened.getByTestId('handoff-reply-text').waitFor({ timeout: LONG });
    assert.equal(await opened.getByTestId('handoff-toggle').getAttribute('aria-expanded'), 'true');
    assert.match(await opened.getByTestId('task-question').textContent(), /第1位客户/);
    assert.equal(await opened.locator('[data-event="handed_off"]').first().textContent(), '转人工');
    assert.equal(await agent.getByTestId('handoff-reply-text').count(), 1, 'only the opened one');
    await agent.screenshot({ path: join(out, 'console-handoffs-open.png'), fullPage: true });
    assertClean(agent, 'the hand-offs');
    // the second page holds the rest
    await agent.getByTestId('handoff-next').click();
    await agent.getByTestId('handoff-page').filter({ hasText: `第 21–${total} 条` }).waitFor({ timeout: LONG });
    assert.equal(await rows.count(), total - 20);
    // on a phone, one line each and nothing wider than the screen
    const agentPhone = await login(browser, base, 'agent1', PHONE);
    await agentPhone.getByTestId('nav-handoffs').click();
    await agentPhone.getByTestId('handoff-row').first().waitFor({ timeout: LONG });
    const pb = await agentPhone.getByTestId('handoff-row').first().boundingBox();
    assert.ok(pb.height < 56, `one line on a phone (${pb.height} px)`);
    await assertNoOverflow(agentPhone, 'the hand-offs on a phone');
    await agentPhone.screenshot({ path: join(out, 'console-handoffs-phone.png'), fullPage: true });

    // --- the supervisor's charts: whole, distinct ticks (one decision of a kind: 0, 1; never 0, 1, 1)
    await api(base, 'POST', `/v1/reviews/${mdId}/claim`, 'tg-demo-reviewer');
    const dec = await api(base, 'POST', `/v1/reviews/${mdId}/decision`, 'tg-demo-reviewer', { action: 'reject', reason: 'test', attestations: [] });
    assert.equal(dec.status, 200, JSON.stringify(dec.json));
    const sup = await login(browser, base, 'super1', DESKTOP);
    await sup.getByTestId('nav-supervisor').click();
    await sup.getByTestId('supervisor-view').waitFor({ timeout: LONG });
    await sup.getByTestId('chart').first().waitFor({ timeout: LONG });
    const charts = await sup.$$eval('[data-testid="chart"]', (cs) => cs.map((c) =>
      [...c.querySelectorAll('[data-testid="chart-tick"]')].map((tk) => tk.textContent)));
    assert.ok(charts.length >= 4);
    for (const ticks of charts.slice(0, 4)) {  // counts: by hour, reviewer, action, queue
      assert.ok(ticks.length >= 2, `ticks ${ticks}`);
      assert.ok(ticks.every((x) => /^\d+$/.test(x)), `whole ticks: ${ticks}`);
      const n = ticks.map(Number);
      assert.ok(n.every((x, i) => i === 0 || x > n[i - 1]), `distinct, increasing ticks: ${ticks}`);
    }
    // the monitor's days without judgements are gaps (outlined), never a FAR of 0
    const far = await sup.$$eval('[data-testid="chart"] rect', (rs) => rs.map((r) => r.getAttribute('data-gap')));
    assert.ok(far.includes('1'), 'a day without data is drawn as a gap');
    await sup.screenshot({ path: join(out, 'console-supervisor-ticks.png'), fullPage: true });
    assertClean(sup, 'the supervisor view');
    console.log(`ok: the console view on a desktop and a phone; screenshots in ${out}`);
  } finally {
    await browser.close();
    gw.kill('SIGTERM');
    await new Promise((r) => gw.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); if (gw) gw.kill('SIGKILL'); process.exit(1); });
