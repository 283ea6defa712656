// trustgate number, time and text formats shared by the console's views and its charts.

export const pad2 = (n) => String(n).padStart(2, '0');

// A duration in ms as m:ss, or h:mm:ss from an hour on (seconds rounded up).
export function fmtDur(ms) {
  const s = Math.ceil(ms / 1000), hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60);
  return hh ? `${hh}:${pad2(mm)}:${pad2(s % 60)}` : `${mm}:${pad2(s % 60)}`;
}

// A moment (ms since the epoch, as a number or a string of digits, or a date text) as
// M-DD hh:mm:ss in local time; anything else as its text.
export function fmtTime(at) {
  const d = new Date(typeof at === 'string' && /^\d+$/.test(at) ? Number(at) : at);
  if (at == null || isNaN(d)) return String(at ?? '');
  return `${d.getMonth() + 1}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

// The first n characters of s, with … when it was cut.
export const excerpt = (s, n) => { s = String(s || ''); return s.length > n ? s.slice(0, n) + '…' : s; };

// ms as seconds with one decimal; — when there is no number.
export const secs = (ms) => (typeof ms === 'number' ? (ms / 1000).toFixed(1) : '—');

// ¥600,000: an amount in yuan, grouped by thousands, with fen only when it has some.
export function fmtYuan(v) {
  const n = Math.round(Number(v) * 100) / 100;
  if (!Number.isFinite(n)) return String(v ?? '');
  const frac = Number.isInteger(n) ? 0 : 2;
  return `¥${n.toLocaleString('en-US', { minimumFractionDigits: frac, maximumFractionDigits: frac })}`;
}

// A number a condition compared: integers as they are, shares of 1 as percentages, else 2 decimals.
export function fmtValue(field, v) {
  if (typeof v !== 'number') return '';
  if (/confidence|^intent$/.test(field)) return `${Math.round(v * 100)}%`;
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

// A share of 1 as a percentage with one decimal, a number with d decimals, a p-value; — when
// there is no number.
export const pct = (x) => (typeof x === 'number' ? `${(x * 100).toFixed(1)}%` : '—');
export const num = (x, d = 3) => (typeof x === 'number' ? x.toFixed(d) : '—');
export const fmtP = (p) => (typeof p !== 'number' ? '—' : p < 0.0001 ? p.toExponential(1) : p.toFixed(4));
