// trustgate console: the supervisor's numbers and charts (tasks by hour, reviewer, action and
// queue; the monitored false-answer rate).
import { t, tl } from '/common/i18n.js';
import { h } from '/common/dom.js';
import { chartCard } from '/common/chart.js';
import { fmtTime, pad2, secs } from '/common/format.js';
import { app, api, setClock, swap, view } from '/console/app.js';

export async function load() {
  const s = await api('GET', '/v1/reviews/stats');
  setClock(s.now_ms);
  const m = await api('GET', '/v1/monitor').catch(() => null);
  return swap('stats', { ...s, monitor: m });
}

export function render() {
  const s = app.store.stats;
  if (!s) return;
  const stat = (key, testid, val, unit) => h('div', { class: 'stat' },
    h('div', { class: 'num' }, h('span', { testid, text: String(val ?? '—') }), unit ? h('small', { text: ` ${unit}` }) : null),
    h('div', { class: 'lbl', i18n: key }));
  const hour = (ms) => pad2(new Date(ms).getHours());
  const ba = s.by_action || {};
  const mon = s.monitor, crit = mon?.criterion;
  const day = (ms) => `${pad2(new Date(ms).getMonth() + 1)}-${pad2(new Date(ms).getDate())}`;
  view.replaceChildren(h('div', { class: 'sup', testid: 'supervisor-view' },
    h('div', { class: 'toolbar' }, h('h2', { i18n: 'sup.title' }),
      h('span', { class: 'muted', text: t('sup.since', { t: fmtTime(s.since_ms) }) })),
    crit?.met ? h('div', { class: 'error', testid: 'far-alert', text: t('sup.farAlert', { d: crit.days, m: Math.round(crit.min_far * 100) }) }) : null,
    h('div', { class: 'stats' },
      stat('sup.created', 'stat-created', s.created), stat('sup.decided', 'stat-decided', s.decided),
      stat('sup.handedOff', 'stat-handed-off', s.handed_off), stat('sup.open', 'stat-open', s.open),
      stat('sup.median', 'stat-median', secs(s.decision_ms?.median), 's'), stat('sup.p95', 'stat-p95', secs(s.decision_ms?.p95), 's')),
    h('div', { class: 'charts' },
      chartCard('sup.byHour', (s.by_hour || []).map((b) => ({ label: hour(b.hour_ms), values: [b.created, b.decided, b.handed_off] })),
        [t('sup.created'), t('sup.decided'), t('state.handed_off')], 3),
      chartCard('sup.byReviewer', (s.by_reviewer || []).map((r) => ({ label: r.actor, values: [r.decisions], note: `median ${secs(r.median_ms)} s` })),
        [t('sup.decisions')]),
      chartCard('sup.byAction', ['approve', 'edit', 'reject'].map((a) => ({ label: tl('action', a), values: [ba[a] || 0] })),
        [t('sup.decisions')]),
      chartCard('sup.byQueue', (s.by_queue || []).map((q) => ({ label: tl('queue', q.queue), values: [q.created, q.open] })),
        [t('sup.created'), t('sup.open')]),
      mon ? chartCard('sup.far', (mon.days || []).map((d) => ({ label: day(d.day_ms), values: [d.far == null ? null : Math.round(d.far * 1000) / 10], note: `${d.good}/${d.good + d.bad}` })),
        [t('sup.far')], 2) : null)));
}
