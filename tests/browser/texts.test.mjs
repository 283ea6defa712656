// texts.test.mjs - the pages say what the deployment's config says, never the demo's words, in
// a real browser (Debian's chromium driven by playwright-core) against the real daemon:
//   - a deployment with its own web.texts: the chat page shows its title (also the tab's), its
//     greeting and its example questions (one click sends one), in English its English title
//     and no examples where it gives none; the console's login form shows its hint, in either
//     language; nothing of the demo (保险, reviewer1, 演示, demo) appears;
//   - its review.risk_tags order the hand-offs: a hand-off tagged with one of them comes before
//     an older one tagged with a tag the demo counts as risky (complaint_or_person), and shows
//     that tag; the labels route serves trustgate's own risk tag (degraded_3x) with them;
//   - a deployment without web.texts: generic words, no example row, no login hint;
//   - `trustgate config check` reports bad web.texts and review.risk_tags with file:line.
// Screenshots go to $TG_TEST_OUTPUT (texts-chat.png, texts-login.png, texts-handoffs.png,
// texts-bare-chat.png).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { api, startDaemon } from './support.mjs';

const bin = process.env.TG_BINARY_DIR || 'build';
const out = process.env.TG_TEST_OUTPUT || join(bin, 'test-output');
const dir = mkdtempSync(join(tmpdir(), 'tg-texts-'));
const LONG = 60000;
const DEMO = /保险|reviewer1|super1|演示|demo/i;
mkdirSync(out, { recursive: true });

const BASE = `auth:
  api_keys:
    - {name: t, key: tg-test-key}
backends:
  - {name: s, type: script, reply: 好的，已收到。}
route: {backend: s}
users:
  - {name: alice, role: agent, password: pw, token: tg-alice}
  - {name: rita, role: reviewer, password: pw, token: tg-rita}
policies:
  - id: t-old
    description: an older hand-off with the demo's complaint tag
    stage: pre
    when: {keywords: [旧的交接]}
    then:
      - tag: complaint_or_person
      - review: {sla: 1s, queue: service}
  - id: t-new
    description: a newer hand-off with this deployment's risk tag
    stage: pre
    when: {keywords: [新的交接]}
    then:
      - tag: vip_complaint
      - review: {sla: 1s, queue: service}
`;

// A deployment of its own: its words on the pages and its own risk tag.
writeFileSync(join(dir, 'own.yaml'), `${BASE}review:
  risk_tags: [vip_complaint]
labels:
  zh: {vip_complaint: 大客户投诉}
web:
  chat: true
  texts:
    zh:
      chat_title: 家电售后客服
      chat_intro: 您好，这里是家电售后，请描述您的问题。
      chat_examples: [洗衣机怎么保修？, 冰箱不制冷怎么办？]
      login_hint: 测试账号：alice，密码 pw
    en:
      chat_title: appliance help desk
      login_hint: "Test user: alice, password pw"
`);
// The same without texts.
writeFileSync(join(dir, 'bare.yaml'), `${BASE}web: {chat: true}\n`);

const gws = [];
async function startGateway(config, data) {
  const g = await startDaemon(bin, join(dir, config), join(dir, data), LONG);
  gws.push(g.proc);
  return g.base;
}

async function newPage(browser, url) {
  const ctx = await browser.newContext({ locale: 'zh-CN', viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  page.on('console', (m) => {
    // before signing in, GET /console/api/me answers 401: how the console learns nobody is signed in
    if (m.type() === 'error' && !m.location().url.endsWith('/console/api/me')) errors.push(m.text());
  });
  page.errors = errors;
  await page.goto(url);
  return page;
}

const visibleText = (page) => page.evaluate(() => `${document.title}\n${document.body.innerText}`);

function checkConfigErrors() {
  writeFileSync(join(dir, 'bad.yaml'), `backends:
  - {name: b, type: script, reply: hi}
route: {backend: b}
review:
  risk_tags: [ok_tag, "", 3]
web:
  texts:
    zh:
      chat_title: ""
      chat_examples: 问题
      login_hnt: x
    x_y: {chat_title: t}
    en: a text
`);
  const check = spawnSync(`${bin}/trustgate`, ['config', 'check', join(dir, 'bad.yaml')], { encoding: 'utf8' });
  const errs = check.stdout + check.stderr;
  assert.equal(check.status, 1, errs);
  for (const want of [
    'bad.yaml:5: review.risk_tags[1] must be a tag name, not an empty text',
    'bad.yaml:5: review.risk_tags[2] must be a tag name, not an integer',
    'bad.yaml:9: web.texts.zh.chat_title must be a non-empty text, not an empty one',
    'bad.yaml:10: web.texts.zh.chat_examples must be a list of example questions',
    "bad.yaml:11: unknown key 'login_hnt' in web.texts.zh (did you mean 'login_hint'?)",
    "bad.yaml:12: web.texts: 'x_y' is not a language tag",
    'bad.yaml:13: web.texts.en must be a mapping',
  ]) assert.ok(errs.includes(want), `missing "${want}" in:\n${errs}`);
}

// The chat page of the deployment with its own texts, in Chinese and in English.
async function checkOwnChat(browser, base) {
  const texts = (await (await fetch(`${base}/chat/api/texts`)).json()).texts;
  assert.deepEqual(texts.zh.chat_examples, ['洗衣机怎么保修？', '冰箱不制冷怎么办？']);
  assert.equal(texts.en.chat_examples, undefined, 'no examples where the config gives none');
  const chat = await newPage(browser, `${base}/`);
  const examples = chat.locator('[data-testid="chat-examples"] button');
  await examples.first().waitFor({ timeout: LONG });
  assert.deepEqual(await examples.allTextContents(), ['洗衣机怎么保修？', '冰箱不制冷怎么办？']);
  assert.equal(await chat.getByTestId('chat-title').textContent(), '家电售后客服');
  assert.equal(await chat.title(), 'trustgate 家电售后客服');
  assert.equal(await chat.getByTestId('chat-intro').textContent(), '您好，这里是家电售后，请描述您的问题。');
  assert.doesNotMatch(await visibleText(chat), DEMO, 'nothing of the demo on the chat page');
  // an example is sent with one click
  await examples.nth(1).click();
  const mine = chat.locator('[data-testid="chat-msg"][data-role="user"]');
  await mine.first().waitFor({ timeout: LONG });
  assert.equal(await mine.first().locator('.text').textContent(), '冰箱不制冷怎么办？');
  await chat.locator('[data-testid="chat-msg"][data-role="bot"]').first().waitFor({ timeout: LONG });
  await chat.screenshot({ path: join(out, 'texts-chat.png'), fullPage: true });
  // in English: the English title, the generic greeting, no examples
  await chat.getByTestId('lang-toggle').click();
  await chat.getByTestId('chat-title').filter({ hasText: 'appliance help desk' }).waitFor({ timeout: LONG });
  assert.equal(await chat.title(), 'trustgate appliance help desk');
  assert.match(await chat.getByTestId('chat-intro').textContent(), /^Hello!/);
  assert.ok(await chat.locator('#examples-row').isHidden(), 'no example row in English');
  assert.doesNotMatch(await visibleText(chat), DEMO);
  assert.deepEqual(chat.errors, []);
}

// The console of the deployment with its own texts: the login hint, then the hand-offs.
async function checkOwnConsole(browser, base) {
  const page = await newPage(browser, `${base}/console/`);
  const hint = page.getByTestId('login-hint');
  await hint.filter({ hasText: '测试账号：alice，密码 pw' }).waitFor({ timeout: LONG });
  assert.doesNotMatch(await visibleText(page), DEMO, 'nothing of the demo on the login form');
  await page.screenshot({ path: join(out, 'texts-login.png'), fullPage: true });
  await page.getByTestId('lang-toggle').click();
  await hint.filter({ hasText: 'Test user: alice, password pw' }).waitFor({ timeout: LONG });
  await page.getByTestId('lang-toggle').click();

  // the labels route serves trustgate's own risk tag and this deployment's, not the demo's
  const lab = await api(base, 'GET', '/console/api/labels', 'tg-alice');
  assert.equal(lab.status, 200);
  assert.deepEqual(lab.json.risk_tags, ['degraded_3x', 'vip_complaint']);

  // an older hand-off with the demo's complaint tag, then a newer one with this deployment's tag
  const ask = (user, content) => api(base, 'POST', '/v1/chat/completions', 'tg-test-key',
    { user, messages: [{ role: 'user', content }] });
  const old = (await ask('cust-old', '旧的交接：我要投诉')).json.trustgate.review_id;
  const fresh = (await ask('cust-new', '新的交接：我要投诉')).json.trustgate.review_id;
  assert.ok(old && fresh);
  for (let i = 0; i < 200; i++) {  // both SLAs of 1 s expire into the agents' queue
    const l = await api(base, 'GET', '/v1/handoffs?limit=500', 'tg-alice');
    if (l.json.data.filter((x) => x.id === old || x.id === fresh).length === 2) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  await page.getByTestId('login-user').fill('alice');
  await page.getByTestId('login-password').fill('pw');
  await page.getByTestId('login-submit').click();
  await page.getByTestId('logout').waitFor({ state: 'visible', timeout: LONG });
  assert.ok(await hint.isHidden(), 'the hint goes with the login form');
  await page.getByTestId('nav-handoffs').click();
  const rows = page.getByTestId('handoff-row');
  await rows.nth(1).waitFor({ timeout: LONG });
  assert.deepEqual(await rows.evaluateAll((rs) => rs.map((r) => r.dataset.reviewId)), [fresh, old],
    'the hand-off with the config\'s risk tag first, though the newer');
  assert.equal(await rows.first().locator('.urg').evaluate((e) => e.classList.contains('r1')), true);
  assert.equal(await rows.nth(1).locator('.urg').evaluate((e) => e.classList.contains('r0')), true,
    'the demo\'s complaint tag is no risk here');
  assert.equal(await rows.first().locator('[data-tag="vip_complaint"]').textContent(), '大客户投诉');
  await page.screenshot({ path: join(out, 'texts-handoffs.png'), fullPage: true });
  assert.deepEqual(page.errors, []);
}

// A deployment without web.texts: generic words, no examples, no hint.
async function checkBare(browser, base) {
  assert.deepEqual((await (await fetch(`${base}/chat/api/texts`)).json()), { texts: {} });
  assert.deepEqual((await (await fetch(`${base}/console/api/texts`)).json()), { texts: {} });
  const chat = await newPage(browser, `${base}/`);
  await chat.getByTestId('chat-title').filter({ hasText: '智能客服' }).waitFor({ timeout: LONG });
  assert.equal(await chat.title(), 'trustgate 智能客服');
  assert.ok(await chat.getByTestId('chat-intro').isVisible(), 'a generic greeting');
  assert.ok(await chat.locator('#examples-row').isHidden(), 'no example row');
  assert.equal(await chat.locator('[data-testid="chat-examples"] button').count(), 0);
  assert.doesNotMatch(await visibleText(chat), DEMO);
  await chat.screenshot({ path: join(out, 'texts-bare-chat.png'), fullPage: true });
  const login = await newPage(browser, `${base}/console/`);
  await login.getByTestId('login-user').waitFor({ state: 'visible', timeout: LONG });
  await login.waitForLoadState('networkidle');
  assert.ok(await login.getByTestId('login-hint').isHidden(), 'no login hint');
  assert.doesNotMatch(await visibleText(login), DEMO);
  assert.deepEqual([...chat.errors, ...login.errors], []);
}

async function main() {
  checkConfigErrors();
  const own = await startGateway('own.yaml', 'own-data');
  const bare = await startGateway('bare.yaml', 'bare-data');
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    await checkOwnChat(browser, own);
    await checkOwnConsole(browser, own);
    await checkBare(browser, bare);
    console.log(`ok: the pages show the config's texts and risk tags; screenshots in ${out}`);
  } finally {
    await browser.close();
    for (const g of gws) {
      g.kill('SIGTERM');
      await new Promise((r) => g.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); for (const g of gws) g.kill('SIGKILL'); process.exit(1); });
