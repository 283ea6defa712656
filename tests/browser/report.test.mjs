// report.test.mjs - the HTML report of `trustgate eval far` opened in Debian's
// chromium (playwright-core): it loads with no network, its charts render with
// bars of non-zero size, and its FAR matches the JSON report of the same run;
// the other suites' reports, and `trustgate ab report --html` on seeded rows
// (the difference drawn inside its confidence sequence).
// A screenshot goes to $TG_TEST_OUTPUT.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const bin = process.env.TG_BINARY_DIR || 'build';
const out = process.env.TG_TEST_OUTPUT || join(bin, 'test-output');
const dir = mkdtempSync(join(tmpdir(), 'tg-report-'));
mkdirSync(out, { recursive: true });

async function main() {
  const html = join(dir, 'far.html'), json = join(dir, 'far.json');
  execFileSync(`${bin}/trustgate`, ['eval', 'far', '-c', 'examples/insurance/trustgate.yaml',
    '--set', 'examples/insurance/eval/far.jsonl', '--html', html, '--json', json], { stdio: 'pipe' });
  const report = JSON.parse(readFileSync(json, 'utf8'));
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const requests = [];
    page.on('request', (r) => { if (!r.url().startsWith('file:')) requests.push(r.url()); });
    await page.goto(`file://${html}`);
    assert.deepEqual(requests, [], 'the report fetches nothing');
    const charts = page.locator('svg.chart');
    assert.ok(await charts.count() >= 2, 'two charts at least');
    const box = await charts.first().boundingBox();
    assert.ok(box && box.width > 100 && box.height > 50, 'the chart is drawn');
    const widths = await page.$$eval('svg.chart rect', (rs) => rs.map((r) => r.getBoundingClientRect().width));
    assert.ok(widths.filter((w) => w > 2).length >= 3, 'bars of real length');
    const far = await page.locator('#far').textContent();
    assert.match(far, /^\d+\.\d%$/);
    assert.ok(Math.abs(parseFloat(far) - report.far * 100) <= 0.051, `${far} vs ${report.far}`);
    await page.screenshot({ path: join(out, 'eval-far-report.png'), fullPage: true });
    // the other suites' reports draw their charts the same way
    for (const [suite, set] of [['hallucination', 'hallucination.jsonl'], ['crosslingual', 'trilingual.jsonl'],
      ['robustness', 'far.jsonl']]) {
      const file = join(dir, `${suite}.html`);
      execFileSync(`${bin}/trustgate`, ['eval', suite, '-c', 'examples/insurance/trustgate.yaml',
        '--set', `examples/insurance/eval/${set}`, '--html', file], { stdio: 'pipe' });
      await page.goto(`file://${file}`);
      const bars = await page.$$eval('svg.chart rect', (rs) => rs.map((r) => r.getBoundingClientRect().width));
      assert.ok(bars.length >= 1 && bars.some((w) => w > 2), `${suite}: the chart has bars`);
      await page.screenshot({ path: join(out, `eval-${suite}-report.png`), fullPage: true });
    }
    // an experiment's report: 20 days of seeded rows, a 12 % control against 16 %
    let seed = 42;
    const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
    const rows = [];
    for (let day = 0; day < 20; day++) {
      for (let i = 0; i < 200; i++) {
        const variant = i % 2 ? 'candidate' : 'control';
        rows.push(JSON.stringify({ variant, day, resolved: rand() < (variant === 'control' ? 0.12 : 0.16) ? 1 : 0 }));
      }
    }
    writeFileSync(join(dir, 'rows.jsonl'), rows.join('\n') + '\n');
    const abHtml = join(dir, 'ab.html');
    execFileSync(`${bin}/trustgate`, ['ab', 'report', '--data', join(dir, 'rows.jsonl'), '--control', 'control',
      '--metric', 'resolved', '--html', abHtml], { stdio: 'pipe' });
    await page.goto(`file://${abHtml}`);
    const band = await page.locator('svg.chart polygon').boundingBox();
    assert.ok(band && band.width > 300 && band.height > 20, 'the confidence sequence is a band');
    const points = await page.$eval('svg.chart polyline', (l) => l.getAttribute('points').trim().split(/\s+/).length);
    assert.equal(points, 20, 'one point per look');
    await page.screenshot({ path: join(out, 'ab-report.png'), fullPage: true });
    assert.deepEqual(requests, [], 'no report fetches anything');
    console.log(`ok: FAR report renders (${far}); screenshot in ${out}`);
  } finally {
    await browser.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
