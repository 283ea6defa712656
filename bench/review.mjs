// bench/review.mjs - the review queue under load, through `trustgate serve`:
//
//   1. 10,000 held turns (BENCH_TASKS) make 10,000 pending review tasks, each
//      with its SLA timer armed (and a warning timer).  Memory: the server's
//      RSS before and after (VmRSS from /proc), per task.
//   2. Claim and decide BENCH_DECIDE of them, one request at a time over one
//      keep-alive connection: latency p50/p99 of each call.  Baseline in the
//      same run and on the same connection: GET /healthz.
//   3. The rest expire: how late each hand-off happened after its deadline
//      (the hand-off event's time minus deadline_ms, read from the store),
//      p50/p99/max.
// Targets (issue 5): decisions under 5 ms p99 through the API; expiry within
// 100 ms of the deadline at p99.  Run: bench/review.sh
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import http from 'node:http';

const build = process.env.BENCH_BUILD_DIR || 'build';
const N = Number(process.env.BENCH_TASKS || 10000);
const DECIDE = Number(process.env.BENCH_DECIDE || 1000);
const SLA_S = Number(process.env.BENCH_SLA || 45);
const CONC = 16;
const dir = mkdtempSync(join(tmpdir(), 'tg-review-bench-'));

writeFileSync(join(dir, 'trustgate.yaml'), `
server:
  log_level: error
auth:
  api_keys:
    - name: bench
      key: tg-bench
review:
  warn_before: 10s
  four_eyes: false
users:
  - name: rb
    role: reviewer
    token: tg-bench-reviewer
backends:
  - name: s
    type: script
    reply: 建议您配置稳健型理财产品，具体以合同为准。
route:
  backend: s
policies:
  - id: hold
    description: every answer is held for review
    when:
      keywords: [理财]
    then:
      - review: {sla: ${SLA_S}s, queue: wealth, attestations: [已核实客户风险承受能力与产品匹配]}
`);

const agent = new http.Agent({ keepAlive: true, maxSockets: CONC });
let port;

function call(method, path, token, body) {
  return new Promise((resolve, reject) => {
    const data = body ? Buffer.from(JSON.stringify(body)) : null;
    const t0 = process.hrtime.bigint();
    const req = http.request({
      host: '127.0.0.1', port, method, path, agent,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json',
                 ...(data ? { 'content-length': data.length } : {}) },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        if (res.statusCode !== 200)
          return reject(new Error(`${method} ${path}: ${res.statusCode} ${Buffer.concat(chunks)}`));
        resolve({ ms, json: JSON.parse(Buffer.concat(chunks).toString() || 'null') });
      });
    });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

function rssKiB(pid) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/);
  return Number(m[1]);
}

function pct(sorted, q) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

function summary(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: pct(s, 0.5), p99: pct(s, 0.99), max: s[s.length - 1] };
}

const f = (x) => x.toFixed(2);

async function main() {
  const gw = spawn(`${build}/trustgate`, ['serve', '-c', join(dir, 'trustgate.yaml'), '--listen',
    '127.0.0.1:0', '--data', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  port = await new Promise((resolve, reject) => {
    const rl = createInterface({ input: gw.stdout });
    rl.on('line', (l) => { const m = l.match(/serving on http:\/\/127\.0\.0\.1:(\d+)/); if (m) resolve(Number(m[1])); });
    gw.on('exit', (c) => reject(new Error(`trustgate exited ${c}`)));
  });
  try {
    for (let i = 0; i < 200; i++) await call('GET', '/healthz', 'x');
    const rss0 = rssKiB(gw.pid);

    // 1. N held turns, CONC at a time
    const ids = [];
    const t0 = Date.now();
    let next = 0;
    async function worker() {
      while (next < N) {
        const i = next++;
        const r = await call('POST', '/v1/chat/completions', 'tg-bench', {
          user: `cust-${i}`, messages: [{ role: 'user', content: `我想用${10 + (i % 90)}万买理财，怎么配置？` }],
        });
        const id = r.json.trustgate.review_id;
        if (!id) throw new Error('turn was not held');
        ids.push(id);
      }
    }
    await Promise.all(Array.from({ length: CONC }, worker));
    const createS = (Date.now() - t0) / 1000;
    const rss1 = rssKiB(gw.pid);
    if (createS > SLA_S) throw new Error(`creating took ${createS}s, longer than the SLA`);

    // 2. claim + decide, one at a time, with /healthz interleaved as the baseline
    const claims = [], decisions = [], health = [];
    const attest = ['已核实客户风险承受能力与产品匹配'];
    for (let i = 0; i < Math.min(DECIDE, ids.length); i++) {
      health.push((await call('GET', '/healthz', 'x')).ms);
      claims.push((await call('POST', `/v1/reviews/${ids[i]}/claim`, 'tg-bench-reviewer')).ms);
      decisions.push((await call('POST', `/v1/reviews/${ids[i]}/decision`, 'tg-bench-reviewer',
                                 { action: 'approve', attestations: attest })).ms);
    }

    // 3. wait for every other task's deadline, then read when each was handed off
    const waitMs = t0 + SLA_S * 1000 + createS * 1000 + 3000 - Date.now();
    if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
    await call('GET', '/readyz', 'x'); // flushes the store
    const rows = execFileSync('sqlite3', [join(dir, 'trustgate.db'),
      "SELECT json_extract(task,'$.deadline_ms'), json_extract(task,'$.events[#-1].at') " +
      "FROM reviews WHERE state='handed_off'"], { encoding: 'utf8' }).trim().split('\n');
    const late = rows.filter(Boolean).map((r) => { const [d, at] = r.split('|').map(Number); return at - d; });

    const c = summary(claims), d = summary(decisions), h = summary(health), l = summary(late);
    const out = {
      tasks: N, create_s: createS, rss_before_kib: rss0, rss_pending_kib: rss1,
      bytes_per_task: Math.round((rss1 - rss0) * 1024 / N),
      claim_ms: c, decision_ms: d, healthz_ms: h, expiry_late_ms: l,
      handed_off: late.length, expected_handoffs: N - Math.min(DECIDE, ids.length),
    };
    console.log(`review queue: ${N} pending tasks with SLA timers (created in ${f(createS)} s)`);
    console.log(`  memory     RSS ${(rss0 / 1024).toFixed(1)} MiB idle -> ${(rss1 / 1024).toFixed(1)} MiB with ${N} pending (${out.bytes_per_task} B per task)`);
    console.log(`  baseline   GET /healthz          p50 ${f(h.p50)} ms  p99 ${f(h.p99)} ms`);
    console.log(`  claim      POST .../claim        p50 ${f(c.p50)} ms  p99 ${f(c.p99)} ms  (${f(c.p99 / h.p99)}x baseline p99)`);
    console.log(`  decision   POST .../decision     p50 ${f(d.p50)} ms  p99 ${f(d.p99)} ms  (${f(d.p99 / h.p99)}x baseline p99)  target < 5 ms p99: ${d.p99 < 5 ? 'met' : 'NOT met'}`);
    console.log(`  expiry     ${late.length}/${out.expected_handoffs} handed off, late by p50 ${l.p50} ms  p99 ${l.p99} ms  max ${l.max} ms  target < 100 ms p99: ${l.p99 < 100 ? 'met' : 'NOT met'}`);
    if (process.env.BENCH_OUT) writeFileSync(process.env.BENCH_OUT, JSON.stringify(out, null, 2));
    if (late.length !== out.expected_handoffs) throw new Error('some tasks were not handed off');
  } finally {
    gw.kill('SIGTERM');
    await new Promise((r) => gw.on('exit', r));
    agent.destroy();
    if (!process.env.BENCH_KEEP) rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
