// trustgate console: the review queue, customer-facing tasks apart from internal queues.
import { t, tl } from '/common/i18n.js';
import { h } from '/common/dom.js';
import { excerpt } from '/common/format.js';
import { app, api, enc, setClock, swap, view } from '/console/app.js';
import { kindBadge, prioBadge, queueBadge, slaEl, tagList, tick } from '/console/blocks.js';

export async function load() {
  const res = await api('GET', `/v1/reviews?state=${enc(app.ui.queueState)}`);
  setClock(res.now_ms);
  return swap('list', res.data || []);
}

export function render() {
  const list = app.store.list;
  if (!list) return;
  const ext = list.filter((x) => !x.internal), int = list.filter((x) => x.internal);
  const filter = h('select', { on: { change: (e) => { app.ui.queueState = e.target.value; app.refresh(true); } } },
    ['open', 'pending', 'claimed', 'decided', 'handed_off'].map((s) =>
      h('option', { value: s, selected: s === app.ui.queueState, text: tl('state', s) })));
  view.replaceChildren(
    ...[outcomeBanner()].filter(Boolean),
    h('div', { class: 'toolbar' }, h('h2', { i18n: 'queue.title' }),
      h('label', {}, `${t('queue.filter')} `, filter),
      h('span', { class: 'muted', text: t('queue.count', { n: list.length }) })),
    h('div', { testid: 'queue-table' },
      queueTable(ext, 'queue.customer', false),
      int.length ? queueTable(int, 'queue.internal', true) : null));
  tick();
}

function queueTable(rows, titleKey, internal) {
  const cols = ['col.queue', 'col.kind', 'col.priority', 'col.tags', 'col.question', 'col.claimed', 'col.sla'];
  return h('section', { class: `qsec ${internal ? 'internal' : ''}` }, h('h3', { i18n: titleKey }),
    rows.length ? h('table', { class: 'queue' },
      h('thead', {}, h('tr', {}, cols.map((k) => h('th', { i18n: k })))),
      h('tbody', {}, rows.map(queueRow)))
      : h('p', { class: 'muted', i18n: 'queue.empty' }));
}

function queueRow(x) {
  const open = () => { location.hash = `#/task/${enc(x.id)}`; };
  return h('tr', {
    class: `row ${x.tier === 'vip' ? 'vip' : ''}`, testid: 'queue-row', tabindex: '0',
    data: { reviewId: x.id, state: x.state },
    on: { click: open, keydown: (e) => { if (e.key === 'Enter') open(); } },
  },
  h('td', {}, queueBadge(x.queue)), h('td', {}, kindBadge(x.kind)), h('td', {}, prioBadge(x)),
  h('td', {}, tagList(x.tags)), h('td', { class: 'qtext', text: excerpt(x.question, 60), title: x.question }),
  h('td', { text: x.claimed_by || '—' }), h('td', {}, slaEl(x)));
}

// Result of the last decision, shown once on the queue after returning from a task.
function outcomeBanner() {
  const o = app.ui.outcome;
  if (!o || o.shown) return null;
  o.shown = true;
  return h('div', { class: 'outcome-msg', testid: 'task-outcome', text: `${o.id} — ${t('outcome.decided', { a: o.action, l: tl('action', o.action) })}` });
}
