// trustgate charts for the console, as SVG built element by element: grouped bar charts (the
// supervisor's counts, the fairness rates) and a line inside its band (an experiment's
// difference inside its confidence sequence). The offline evaluation reports draw their own
// charts in C (src/eval); these are the live ones.
import { t } from '/common/i18n.js';
import { h, svg } from '/common/dom.js';
import { excerpt } from '/common/format.js';

const PALETTE = ['#1f6feb', '#1a7f37', '#c62828', '#b26b00'];
const W = 560, H = 200, GRID = '#dde1e7', INK = '#6b7480';

const noData = (root) => root.append(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', 'font-size': 13, fill: INK }, t('sup.noData')));
const yLabel = (x, y, text, attrs = {}) => svg('text', { x, y: y + 4, 'text-anchor': 'end', 'font-size': 10, fill: INK, ...attrs }, text);

// A captioned bar chart (captionKey an i18n key) with a legend when there are several series.
export function chartCard(captionKey, groups, series, labelEvery = 1) {
  const legend = series.length > 1 ? h('div', { class: 'legend' }, series.map((name, i) => {
    const sw = h('span', { class: 'sw' });
    sw.style.background = PALETTE[i];
    return h('span', {}, sw, name);
  })) : null;
  return h('figure', { class: 'chartcard' }, h('figcaption', { i18n: captionKey }), barChart(groups, series, labelEvery), legend);
}

// The y axis of a bar chart: ticks from 0 to top every step, step 1, 2 or 5 times a power of ten
// (at most ~5 ticks); counts (whole values) get whole steps, so no two ticks read the same.
function yTicks(values) {
  const max = Math.max(0, ...values);
  const whole = values.every((v) => Number.isInteger(v));
  if (max <= 0) return { top: 1, ticks: [0, 1] };
  const rough = max / 4, p = 10 ** Math.floor(Math.log10(rough));
  let step = [1, 2, 5, 10].map((m) => m * p).find((x) => x >= rough);
  if (whole) step = Math.max(1, Math.round(step));
  const top = Math.ceil(max / step - 1e-9) * step;
  const ticks = [];
  for (let i = 0; i * step <= top + step / 1e6; i++) ticks.push(Number((i * step).toPrecision(12)));
  return { top, ticks };
}

// Grouped vertical bars: groups [{label, values[], note?}], one colour per series (names in
// series); a group's label under every labelEvery-th group.
export function barChart(groups, series, labelEvery = 1) {
  const L = 34, R = 8, T = 10, B = 28;
  const iw = W - L - R, ih = H - T - B;
  const { top: max, ticks } = yTicks(groups.flatMap((g) => g.values.map((v) => v || 0)));
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: 'chart', 'data-testid': 'chart', role: 'img' });
  for (const v of ticks) {  // grid lines and y labels
    const y = T + ih - (v / max) * ih;
    root.append(svg('line', { x1: L, x2: W - R, y1: y, y2: y, stroke: GRID }),
      yLabel(L - 4, y, String(v), { class: 'tick', 'data-testid': 'chart-tick' }));
  }
  if (!groups.length) {
    noData(root);
    return root;
  }
  const gw = iw / groups.length, bw = Math.max(1, (gw * 0.8) / series.length);
  groups.forEach((g, i) => {
    g.values.forEach((v, j) => {
      if (v == null) {  // no data that day: a gap, drawn as an outline, never a zero
        root.append(svg('rect', { x: L + i * gw + gw * 0.1 + j * bw, y: T, width: Math.max(0.5, bw - 1), height: ih, fill: 'none', stroke: GRID, 'stroke-dasharray': '2 2', 'data-gap': '1' },
          svg('title', {}, `${g.label} · ${series[j]}: —${g.note ? ` (${g.note})` : ''}`)));
        return;
      }
      const bh = ((v || 0) / max) * ih;
      root.append(svg('rect', { x: L + i * gw + gw * 0.1 + j * bw, y: T + ih - bh, width: Math.max(0.5, bw - 1), height: bh, fill: PALETTE[j] },
        svg('title', {}, `${g.label} · ${series[j]}: ${v || 0}${g.note ? ` (${g.note})` : ''}`)));
    });
    if (i % labelEvery === 0) {
      root.append(svg('text', { x: L + i * gw + gw / 2, y: H - B + 14, 'text-anchor': 'middle', 'font-size': 10, fill: INK }, excerpt(g.label, 12)));
    }
  });
  return root;
}

// A line inside its band, point by point: points [{label, value, low, high, strong, tip}], the
// y axis spanning 0 and the band clamped to [min, max]; y labels by yFmt; a strong point green;
// tip its tooltip; a point's label under every ~tenth point.
export function bandChart(points, { testid, min = -Infinity, max = Infinity, yFmt = String }) {
  const L = 44, R = 8, T = 10, B = 24;
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: 'chart', 'data-testid': testid, role: 'img' });
  if (!points?.length) {
    noData(root);
    return root;
  }
  const lo = Math.min(0, ...points.map((p) => Math.max(p.low, min))), hi = Math.max(0, ...points.map((p) => Math.min(p.high, max)));
  const span = hi - lo || 1, n = points.length;
  const x = (i) => L + (n === 1 ? (W - L - R) / 2 : (i / (n - 1)) * (W - L - R));
  const y = (v) => T + (1 - (Math.min(Math.max(v, lo), hi) - lo) / span) * (H - T - B);
  // upper bound left to right, then the lower bound back
  const band = points.map((p, i) => `${x(i)},${y(p.high)}`).concat(points.map((p, i) => `${x(i)},${y(p.low)}`).reverse());
  root.append(svg('polygon', { points: band.join(' '), fill: '#1f6feb22', stroke: 'none' }),
    svg('line', { x1: L, x2: W - R, y1: y(0), y2: y(0), stroke: INK, 'stroke-dasharray': '4 3' }),
    svg('polyline', { points: points.map((p, i) => `${x(i)},${y(p.value)}`).join(' '), fill: 'none', stroke: PALETTE[0], 'stroke-width': 2 }),
    yLabel(L - 4, y(hi), yFmt(hi)), yLabel(L - 4, y(lo), yFmt(lo)), yLabel(L - 4, y(0), '0'));
  points.forEach((p, i) => {
    if (i % Math.ceil(n / 10) === 0) root.append(svg('text', { x: x(i), y: H - 6, 'text-anchor': 'middle', 'font-size': 10, fill: INK }, String(p.label)));
    root.append(svg('circle', { cx: x(i), cy: y(p.value), r: 2.5, fill: p.strong ? PALETTE[1] : PALETTE[0] }, svg('title', {}, p.tip)));
  });
  return root;
}
