// trustgate console: the hand-offs an agent answers, most urgent first, one line each until
// opened, twenty a page.
import { t } from '/common/i18n.js';
import { h } from '/common/dom.js';
import { fmtDur, fmtTime } from '/common/format.js';
import { app, api, clearError, enc, forget, handleError, keepFocus, serverNow, setClock, showError, swap, view } from '/console/app.js';
import {
  addOnSend, badge, conversationBlock, draftBlock, eventsBlock, evidenceBlock, hitsBlock, kindBadge, prioBadge,
  questionBlock, queueBadge, recordBlocks, tagList, tick,
} from '/console/blocks.js';

const HANDOFF_PAGE = 20;            // hand-offs listed per page

export async function load() {
  const res = await api('GET', '/v1/handoffs?limit=500');
  setClock(res.now_ms);
  return swap('handoffs', { list: res.data || [], more: Boolean(res.has_more) });
}

// Hand-offs are ordered by urgency, most urgent first:
//   1. a customer waiting for a person: nobody has answered since the hand-off, or the customer
//      wrote after the last reply;
//   2. risk: a VIP customer; a red line (a rule left the decision to a person) or a risk tag
//      (app.riskTags: the config's review.risk_tags, e.g. a complaint, and the pipeline's own,
//      such as repeated weak answers);
//   3. the nearest (or longest passed) deadline;
//   4. the oldest first.
function lastLine(x) {
  const r = (x.agent_replies || []).reduce((m, a) => Math.max(m, a.at || 0), 0);
  const c = (x.customer_messages || []).reduce((m, a) => Math.max(m, a.at || 0), 0);
  return { waiting: !r || c > r };
}
const dueOf = (x) => x.handoff_deadline_ms ?? x.deadline_ms ?? (x.created_ms || 0) + (x.sla_ms || 0);
function riskOf(x) {
  let r = 0;
  if (x.tier === 'vip' || (x.priority || 0) >= 10) r += 2;
  if (x.kind === 'human_decision' || (x.tags || []).some((g) => app.riskTags.has(g)) ||
    (x.policy_hits || []).some((p) => (p.actions || []).includes('human_decision'))) r += 1;
  return r;
}
function byUrgency(a, b) {
  return (lastLine(b).waiting - lastLine(a).waiting) || (riskOf(b) - riskOf(a)) ||
    (dueOf(a) - dueOf(b)) || ((a.created_ms || 0) - (b.created_ms || 0));
}

export function render() {
  const h0 = app.store.handoffs;
  if (!h0) return;
  const list = [...h0.list].sort(byUrgency);
  const pages = Math.max(1, Math.ceil(list.length / HANDOFF_PAGE));
  app.ui.handoffPage = Math.min(app.ui.handoffPage, pages - 1);
  const first = app.ui.handoffPage * HANDOFF_PAGE;
  const shown = list.slice(first, first + HANDOFF_PAGE);
  const go = (d) => { app.ui.handoffPage += d; keepFocus(render); window.scrollTo(0, 0); };
  const pager = list.length > HANDOFF_PAGE ? h('div', { class: 'pager', testid: 'handoff-pager' },
    h('button', { testid: 'handoff-prev', i18n: 'handoffs.prev', disabled: app.ui.handoffPage === 0, on: { click: () => go(-1) } }),
    h('span', { class: 'muted small', testid: 'handoff-page', text: t('handoffs.page', { a: first + 1, b: first + shown.length, n: list.length }) }),
    h('button', { testid: 'handoff-next', i18n: 'handoffs.next', disabled: app.ui.handoffPage >= pages - 1, on: { click: () => go(1) } })) : null;
  view.replaceChildren(...[
    h('div', { class: 'toolbar' }, h('h2', { i18n: 'handoffs.title' }),
      h('span', { class: 'muted', text: t('queue.count', { n: list.length }) })),
    h('div', { class: 'handoffs', testid: 'handoff-list' },
      list.length ? shown.map(handoffCard) : h('p', { class: 'muted', i18n: 'handoffs.empty' })),
    pager,
    h0.more ? h('p', { class: 'muted small', i18n: 'handoffs.more' }) : null].filter(Boolean));
  tick();
}

// One hand-off: a single line (urgency, queue, risk tags, the question, how long it has waited)
// that opens the whole context and the reply box on click; what is open stays open on refresh.
function handoffCard(x) {
  const open = app.ui.openHandoffs.has(x.id);
  const wait = lastLine(x);
  const due = dueOf(x), late = serverNow() - due;
  const toggle = () => {
    if (app.ui.openHandoffs.has(x.id)) app.ui.openHandoffs.delete(x.id);
    else app.ui.openHandoffs.add(x.id);
    keepFocus(render);
  };
  const risky = (x.tags || []).filter((g) => app.riskTags.has(g));
  const shownTags = risky.length ? risky : (x.tags || []).filter((g) => g !== 'review_sla_breached').slice(0, 1);
  const line = h('button', {
    type: 'button', class: 'hline', testid: 'handoff-toggle', 'aria-expanded': open ? 'true' : 'false',
    title: t('handoffs.expand'), on: { click: toggle },
  },
  h('span', { class: `urg ${wait.waiting ? 'waiting' : ''} r${riskOf(x)}`, title: wait.waiting ? t('handoffs.waiting') : '' }),
  queueBadge(x.original_queue || x.queue),
  x.tier === 'vip' ? badge('vip', 'VIP') : null,
  shownTags.length ? tagList(shownTags) : null,
  h('span', { class: 'hq', text: x.question || '' }),
  h('span', { class: `hdue ${late > 0 ? 'late' : ''}`, testid: 'handoff-due', data: { due: due || null },
    text: due ? t(late > 0 ? 'handoffs.overdue' : 'handoffs.left', { d: fmtDur(Math.abs(late)) }) : '' }),
  h('span', { class: 'chev', text: open ? '▾' : '▸' }));
  return h('article', {
    class: `card hcard ${open ? 'open' : ''}`, testid: 'handoff-row',
    data: { reviewId: x.id, tags: (x.tags || []).join(' '), waiting: wait.waiting ? '1' : '0' },
  },
  line,
  open ? h('div', { class: 'hbody' },
    h('div', { class: 'taskhead' }, h('b', { text: x.id }), kindBadge(x.kind), prioBadge(x),
      tagList(x.tags), h('span', { class: 'muted small', text: fmtTime(x.created_ms) })),
    h('div', { class: 'cols' },
      h('div', { class: 'col main' }, questionBlock(x), conversationBlock(x), draftBlock(x, true), evidenceBlock(x), recordBlocks(x)),
      h('div', { class: 'col side' }, hitsBlock(x), eventsBlock(x))),
    h('div', { class: 'reply' },
      addOnSend(x),
      h('textarea', { testid: 'handoff-reply-text', rows: 3, placeholder: t('handoffs.placeholder'), value: app.ui.replies[x.id] || '',
        on: { input: (e) => { app.ui.replies[x.id] = e.target.value; } } }),
      h('div', { class: 'btns' },
        h('button', { class: 'primary', testid: 'handoff-reply-send', i18n: 'handoffs.send', on: { click: (e) => reply(x, false, e.target) } }),
        h('button', { testid: 'handoff-close', i18n: 'handoffs.close', on: { click: (e) => reply(x, true, e.target) } })))) : null);
}

async function reply(x, close, button) {
  const text = (app.ui.replies[x.id] || '').trim();
  if (!close && !text) return showError(t('err.emptyReply'));
  button.disabled = true;
  try {
    await api('POST', `/v1/handoffs/${enc(x.id)}/reply`, { text, close });
    clearError();
    app.ui.replies[x.id] = '';
    forget('handoffs');  // force a re-render even if the list looks the same
    await app.refresh(true);
  } catch (e) {
    button.disabled = false;
    handleError(e);
  }
}
