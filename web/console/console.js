// trustgate reviewer console: login, review queue, task review, hand-offs, supervisor charts,
// governance (release freeze, fairness gate, experiments)
import { t, tl, h, label, setLabels, applyI18n, initLangToggle, setConn } from '/common/i18n.js';
import { renderMarkdown } from '/common/markdown.js';

const $ = (sel, root = document) => root.querySelector(sel);
const view = $('#view');
const errBox = $('#error');
const enc = encodeURIComponent;

// ---- state
let me = null;                      // {user, role, csrf}
let clockOffset = 0;                // server clock minus local clock, ms
let clockSet = false;
let current = { route: '', id: '' };
let seq = 0;                        // newest refresh wins
let es = null, esRetry = 0, debounce = 0;
const store = {};                   // list | task | handoffs | stats
const seen = {};                    // JSON of each store entry, to skip needless re-renders
const ui = { checked: new Set(), mode: '', editText: null, rejectText: '', replies: {}, outcome: null, queueState: 'open', look: '1d', unfreezeWhy: '', openHandoffs: new Set(), handoffPage: 0 };
const HANDOFF_PAGE = 20;            // hand-offs listed per page

// ---- API

async function api(method, path, body) {
  const opt = { method, credentials: 'same-origin', headers: {} };
  if (body !== undefined) {
    opt.headers['Content-Type'] = 'application/json';
    opt.body = JSON.stringify(body);
  }
  if (method !== 'GET' && me?.csrf) opt.headers['X-CSRF-Token'] = me.csrf;
  const res = await fetch(path, opt);
  if (!clockSet) {  // until a list gives now_ms, estimate the server clock from the Date header
    const d = Date.parse(res.headers.get('Date') || '');
    if (d) clockOffset = d - Date.now();
  }
  let data = null;
  try { data = await res.json(); } catch { /* empty or not JSON */ }
  if (!res.ok) {
    const err = new Error(data?.error?.message || `HTTP ${res.status}`);
    err.status = res.status;
    err.code = data?.error?.code;
    throw err;
  }
  return data;
}

function setClock(nowMs) {
  if (typeof nowMs === 'number') { clockOffset = nowMs - Date.now(); clockSet = true; }
}

// Store a value; true when it differs from what is shown.
function swap(key, val) {
  const j = JSON.stringify(val);
  if (j === seen[key]) return false;
  store[key] = val;
  seen[key] = j;
  return true;
}

function showError(msg) { errBox.textContent = msg; errBox.hidden = false; }
function clearError() { errBox.textContent = ''; errBox.hidden = true; }
errBox.addEventListener('click', clearError);

function handleError(e) {
  if (e.status === 401 && me) { showLogin(); showError(e.message); return; }
  showError(e instanceof TypeError ? t('err.network') : e.message);
}

// ---- formatting

const pad2 = (n) => String(n).padStart(2, '0');
function fmtDur(ms) {
  const s = Math.ceil(ms / 1000), hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60);
  return hh ? `${hh}:${pad2(mm)}:${pad2(s % 60)}` : `${mm}:${pad2(s % 60)}`;
}
function fmtTime(at) {
  const d = new Date(typeof at === 'string' && /^\d+$/.test(at) ? Number(at) : at);
  if (at == null || isNaN(d)) return String(at ?? '');
  return `${d.getMonth() + 1}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}
const excerpt = (s, n) => { s = String(s || ''); return s.length > n ? s.slice(0, n) + '…' : s; };
const secs = (ms) => (typeof ms === 'number' ? (ms / 1000).toFixed(1) : '—');
// ¥600,000: an amount in yuan, grouped by thousands, with fen only when it has some.
function fmtYuan(v) {
  const n = Math.round(Number(v) * 100) / 100;
  if (!Number.isFinite(n)) return String(v ?? '');
  const frac = Number.isInteger(n) ? 0 : 2;
  return `¥${n.toLocaleString('en-US', { minimumFractionDigits: frac, maximumFractionDigits: frac })}`;
}
// A number a condition compared: integers as they are, shares of 1 as percentages, else 2 decimals.
function fmtValue(field, v) {
  if (typeof v !== 'number') return '';
  if (/confidence|^intent$/.test(field)) return `${Math.round(v * 100)}%`;
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

// ---- small shared pieces

const badge = (cls, text, title) => h('span', { class: `badge ${cls}`, text, title });
const queueBadge = (q) => badge('queue', label(q, 'queue'), q);
const kindBadge = (k) => badge(`kind ${k}`, tl('kind', k), k);
const stateBadge = (s) => badge(`state ${s}`, tl('state', s), s);
const prioBadge = (x) => h('span', {}, x.tier === 'vip' ? badge('vip', 'VIP') : null, h('span', { class: 'prio', text: String(x.priority ?? '') }));
// Tags in the interface's language (the config's labels); the code stays in the tooltip.
const tagList = (tags) => h('span', { class: 'tags' }, (tags || []).map((g) =>
  h('span', { class: `chip tag ${g === 'review_sla_breached' ? 'bad' : ''}`, text: label(g), title: g, data: { tag: g } })));
const block = (titleKey, ...kids) => h('section', { class: `block b-${titleKey.split('.').pop()}` }, h('h3', { i18n: titleKey }), ...kids);

// Live SLA countdown; tick() fills it in every second.
function slaEl(x) {
  const live = (x.state === 'pending' || x.state === 'claimed') && x.deadline_ms;
  return h('span', {
    class: 'sla', testid: 'sla-countdown',
    data: live ? { deadline: x.deadline_ms, sla: x.sla_ms, warn: x.sla_warning ? '1' : '' } : { level: 'none' },
    text: live ? '' : '—',
  });
}
function tick() {
  const now = Date.now() + clockOffset;
  for (const el of document.querySelectorAll('.sla[data-deadline]')) {
    const left = Number(el.dataset.deadline) - now;
    const ratio = left / (Number(el.dataset.sla) || 1);
    el.dataset.level = left <= 0 ? 'expired' : ratio < 0.2 ? 'red' : (ratio < 0.5 || el.dataset.warn) ? 'amber' : 'green';
    el.textContent = left <= 0 ? t('sla.expired') : fmtDur(left);
  }
  for (const el of document.querySelectorAll('.hdue[data-due]')) {  // hand-offs: time past or left
    const late = now - Number(el.dataset.due);
    el.classList.toggle('late', late > 0);
    el.textContent = t(late > 0 ? 'handoffs.overdue' : 'handoffs.left', { d: fmtDur(Math.abs(late)) });
  }
}
setInterval(tick, 1000);

// Question text with every policy trigger substring wrapped in <mark>.
function highlight(text, needles) {
  text = String(text || '');
  const ranges = [];
  for (const n of new Set(needles.filter(Boolean))) {
    for (let i = text.indexOf(n); i !== -1; i = text.indexOf(n, i + n.length)) ranges.push([i, i + n.length]);
  }
  ranges.sort((a, b) => a[0] - b[0]);
  const merged = [];  // overlapping triggers become one mark
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last && r[0] < last[1]) last[1] = Math.max(last[1], r[1]);
    else merged.push([...r]);
  }
  const out = [];
  let pos = 0;
  for (const [s, e] of merged) {
    out.push(text.slice(pos, s), h('mark', { text: text.slice(s, e) }));
    pos = e;
  }
  out.push(text.slice(pos));
  return out;
}

// ---- task context blocks (shared by the task view and the hand-off list)

function questionBlock(x) {
  const needles = (x.policy_hits || []).map((p) => p.trigger?.text);
  return block('task.question', h('div', { class: 'question', testid: 'task-question' }, highlight(x.question, needles)));
}

function conversationBlock(x) {
  const c = x.conversation || [];
  if (!c.length) return null;
  return block('task.conversation', h('ol', { class: 'conv' },
    c.map((m) => h('li', { class: `r-${m.role}` }, h('b', { text: tl('role', m.role) }), h('span', { text: m.content })))));
}

// A follow-up task is a promise the gateway made: the customer was told to wait (the holding
// reply) and nobody has answered yet, so there is no draft; the person's answer replaces the
// promise on the customer's screen.
const isPromise = (x) => x.kind === 'follow_up';

// handoff: shown on a hand-off card, where the agent replies in the box below it.
function draftBlock(x, handoff = false) {
  const none = (key) => h('div', { class: 'draft none', testid: 'task-draft', i18n: handoff ? 'task.noDraftHandoff' : key });
  if (isPromise(x)) {
    return block('task.draft',
      h('div', { class: 'promise', testid: 'task-promise' },
        h('div', { class: 'muted small', i18n: 'task.promised' }),
        h('div', { class: 'draft promised', testid: 'task-holding', text: x.holding_reply || '—' })),
      x.draft ? h('div', { class: 'draft', testid: 'task-draft', text: x.draft }) : none('task.noDraftFollowUp'));
  }
  return block('task.draft',
    x.draft ? h('div', { class: 'draft', testid: 'task-draft', text: x.draft }) : none('task.noDraft'),
    x.holding_reply ? h('p', { class: 'muted small', testid: 'task-holding', text: `${t('task.holding')}: ${x.holding_reply}` }) : null);
}

// What the output rules put around a person's answer (the task's people_answers: disclaimers),
// shown where the person writes it, before they send: "发送时将自动加上：本结果不构成诊疗意见。".
// The gateway adds each one unless the answer already has it in its place.
function addOnSend(x) {
  const pa = x.people_answers || {};
  const pre = (pa.prefix || []).filter((s) => typeof s === 'string' && s.trim());
  const suf = (pa.suffix || []).filter((s) => typeof s === 'string' && s.trim());
  if (!pre.length && !suf.length) return null;
  const where = suf.length > 0;  // name the place only when there is more than the start
  const item = (s, side) => h('span', { class: 'addon-text', testid: `people-${side}`, data: { side }, text: s.trim() },
    where ? h('span', { class: 'muted small', i18n: side === 'prefix' ? 'task.addAtStart' : 'task.addAtEnd' }) : null);
  return h('div', { class: 'addon', testid: 'people-answers', title: t('task.addOnce') },
    h('span', { class: 'addon-label', i18n: 'task.addOnSend' }),
    pre.map((s) => item(s, 'prefix')), suf.map((s) => item(s, 'suffix')),
    h('div', { class: 'muted small', i18n: 'task.addOnce' }));
}

function evidenceBlock(x) {
  const cs = x.citations || [];
  return block('task.evidence', h('ol', { class: 'evidence', testid: 'task-evidence' },
    cs.map((c) => h('li', {},
      h('div', { class: 'ev-head' },
        c.cited ? badge('cited', t('task.cited')) : null,
        h('a', {
          href: `/console/api/source?source=${enc(c.source || '')}`, target: '_blank', rel: 'noopener',
          text: c.title || c.source, on: { click: (e) => { e.preventDefault(); openSource(c.source); } },
        }),
        c.heading ? h('span', { class: 'muted', text: ` › ${c.heading}` }) : null,
        typeof c.score === 'number' ? h('span', { class: 'score', text: c.score.toFixed(2) }) : null),
      c.text ? h('div', { class: 'md', testid: 'evidence-text' }, renderMarkdown(c.text)) : null,
      h('div', { class: 'muted small', text: `${c.source || ''}${c.chunk != null ? ' #' + c.chunk : ''}` })))),
  cs.length ? null : h('p', { class: 'muted', i18n: 'task.noEvidence' }));
}

// What fired a rule, as a reviewer reads it: the amount (金额 ¥600,000 “60万”), the words, the
// identifier (masked), the tool call; a number a condition compared only when nothing else fired.
function triggerText(g) {
  const f = g.field || '';
  const quoted = g.text ? ` “${g.text}”` : '';
  if (f === 'money') return `${t('trig.money')} ${typeof g.value === 'number' ? fmtYuan(g.value) : ''}${quoted}`;
  if (f === 'pii') return `${t('trig.pii')}${g.text ? quoted : ` ${t('trig.piiMasked')}`}`;
  if (f === 'tool_calls') return `${t('trig.tool_calls')}${typeof g.value === 'number' ? ` #${g.value + 1}` : ''}${quoted}`;
  if (g.text != null) return `${tl('trig', f)}${quoted}`;
  const v = fmtValue(f, g.value);
  return `${tl('trig', f)}${v ? ` ${v}` : ''}`;
}

// Actions a rule took, in the interface's language.
const actionChips = (actions) => (actions || []).map((a) => {
  const code = typeof a === 'string' ? a : JSON.stringify(a);
  return h('span', { class: 'chip', text: label(code, 'act'), title: code });
});

function hitsBlock(x) {
  return block('task.hits', h('ul', { class: 'hits', testid: 'task-hits' },
    (x.policy_hits || []).map((p) => h('li', { data: { rule: p.rule } },
      h('b', { class: 'rule', text: label(p.rule), title: p.rule }), ' ',
      label(p.rule) !== p.rule ? h('code', { class: 'muted small', text: p.rule }) : null,
      p.description ? h('div', { class: 'small', text: p.description }) : null,
      p.trigger ? h('div', { class: 'trigger', testid: 'task-trigger', data: { field: p.trigger.field } },
        h('span', { class: 'muted small', text: `${t('task.trigger')}: ` }), h('span', { text: triggerText(p.trigger) })) : null,
      (p.actions || []).length ? h('div', {}, actionChips(p.actions)) : null))),
  (x.policy_hits || []).length ? null : h('p', { class: 'muted', text: '—' }));
}

// One line on top of a task: why it is held (the first rule that asked for a person, and the fact
// that fired it), so a reviewer knows what to check before reading anything else.
function whyLine(x) {
  const hits = x.policy_hits || [];
  const p = hits.find((g) => (g.actions || []).some((a) => a === 'human_decision' || a === 'review')) || hits[0];
  if (!p) return null;
  return h('div', { class: 'why', testid: 'task-why' },
    h('span', { class: 'muted', text: `${t('task.why')}: ` }), h('b', { text: label(p.rule), title: p.rule }),
    p.trigger ? h('span', { text: ` · ${triggerText(p.trigger)}` }) : null);
}

// The intent explanation as a reviewer reads it. The classifier reports its strongest features
// (words "w:理财", character n-grams "c:财"); one piece of the question often stands behind several
// of them, so a token contained in a stronger one of the same sign is merged into it (weights
// added: the contributions are additive), numbers and lone numeral units (0, 万, 0万) are dropped
// as noise, and the n strongest remain.
const NOISE = /^[\p{N}\p{P}\p{S}\s万千百十亿元块]*$|^[a-z]$/iu;
function explainTokens(list, n = 5) {
  const kept = [];
  const feats = (list || []).filter((k) => typeof k?.weight === 'number')
    .map((k) => ({ text: String(k.feature ?? '').replace(/^[a-z]+:/, '').trim(), weight: k.weight }))
    .sort((a, b) => Math.abs(b.weight) - Math.abs(a.weight));
  for (const f of feats) {
    if (!f.text || NOISE.test(f.text)) continue;
    const into = kept.find((k) => (k.weight < 0) === (f.weight < 0) && (k.text.includes(f.text) || f.text.includes(k.text)));
    if (into) into.weight += f.weight;
    else kept.push({ ...f });
  }
  return kept.sort((a, b) => b.weight - a.weight).slice(0, n);
}

function tokensBlock(x) {
  const toks = explainTokens(x.explanation?.intent_tokens);
  const max = Math.max(1e-9, ...toks.map((k) => Math.abs(k.weight)));
  const ung = x.explanation?.ungrounded_claims;
  return block('task.intent', h('div', { testid: 'task-tokens' },
    x.intent ? h('div', { class: 'intent', testid: 'task-intent' }, h('b', { text: label(x.intent.name), title: x.intent.name }),
      typeof x.intent.confidence === 'number' ? ` ${(x.intent.confidence * 100).toFixed(0)}%` : '') : null,
    h('ul', { class: 'tokens' }, toks.map((k) => {
      const bar = h('span', { class: `bar ${k.weight < 0 ? 'neg' : ''}` });
      bar.style.width = `${(Math.abs(k.weight) / max) * 100}%`;
      return h('li', { testid: 'intent-token' }, h('span', { class: 'tok', text: k.text }),
        h('span', { class: 'track' }, bar), h('span', { class: 'w', text: k.weight.toFixed(2) }));
    })),
    ung ? h('div', { class: 'warn small', text: t('task.ungrounded', { n: ung }) }) : null));
}

function eventsBlock(x) {
  return block('task.events', h('ol', { class: 'timeline' },
    (x.events || []).map((e) => h('li', {},
      h('time', { text: fmtTime(e.at) }), ' ', h('b', { text: label(e.event), title: e.event, data: { event: e.event } }), ' ',
      h('span', { class: 'muted', text: e.actor || '' }),
      e.reason ? h('div', { class: 'small', text: e.reason }) : null))));
}

// Decision record, final answer and agent replies once they exist.
function recordBlocks(x) {
  const d = x.decision;
  return [
    d ? block('task.decision', h('div', { class: 'record' },
      h('div', {}, h('b', { text: tl('action', d.action) }), ` · ${d.actor || ''} · ${fmtTime(d.at)}`),
      d.reason ? h('div', { text: d.reason }) : null,
      d.text ? h('div', { class: 'draft', text: d.text }) : null,
      (d.attestations || []).length ? h('ul', { class: 'small' }, d.attestations.map((a) => h('li', { text: `✔ ${a}` }))) : null)) : null,
    x.answer ? block('task.answer', h('div', { class: 'draft', text: x.answer })) : null,
    threadBlock(x),
  ];
}

// After a hand-off: the customer's later messages and the agents' replies, in order.
function threadBlock(x) {
  const lines = [
    ...(x.agent_replies || []).map((r) => ({ at: r.at, who: r.actor || '', text: r.text, from: 'agent' })),
    ...(x.customer_messages || []).map((m) => ({ at: m.at, who: tl('role', 'user'), text: m.text, from: 'customer' })),
  ].sort((a, b) => a.at - b.at);
  if (!lines.length) return null;
  return block('task.replies', h('ol', { class: 'replies' }, lines.map((l) => h('li', { data: { from: l.from }, testid: l.from === 'customer' ? 'customer-message' : 'agent-reply' },
    h('time', { text: fmtTime(l.at) }), ` ${l.who}: `, h('span', { text: l.text })))));
}

async function openSource(source) {
  try {
    const s = await api('GET', `/console/api/source?source=${enc(source || '')}`);
    $('#source-title').textContent = s.title || s.source || source;
    $('#source-text').replaceChildren(...renderMarkdown(s.text || ''));
    $('#source').showModal();
  } catch (e) { handleError(e); }
}
$('#source-close').addEventListener('click', () => $('#source').close());

// ---- queue view

async function loadQueue() {
  const res = await api('GET', `/v1/reviews?state=${enc(ui.queueState)}`);
  setClock(res.now_ms);
  return swap('list', res.data || []);
}

function renderQueue() {
  const list = store.list;
  if (!list) return;
  const ext = list.filter((x) => !x.internal), int = list.filter((x) => x.internal);
  const filter = h('select', { on: { change: (e) => { ui.queueState = e.target.value; refresh(true); } } },
    ['open', 'pending', 'claimed', 'decided', 'handed_off'].map((s) =>
      h('option', { value: s, selected: s === ui.queueState, text: tl('state', s) })));
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
  const o = ui.outcome;
  if (!o || o.shown) return null;
  o.shown = true;
  return h('div', { class: 'outcome-msg', testid: 'task-outcome', text: `${o.id} — ${t('outcome.decided', { a: o.action, l: tl('action', o.action) })}` });
}

// ---- task view

async function loadTask() {
  return swap('task', await api('GET', `/v1/reviews/${enc(current.id)}`));
}

function resetTaskUi() {
  ui.checked = new Set();
  ui.mode = '';
  ui.editText = null;
  ui.rejectText = '';
}

function renderTask() {
  const x = store.task;
  if (!x || x.id !== current.id) return;
  const open = (x.state === 'pending' || x.state === 'claimed') && ui.outcome?.id !== x.id;
  view.replaceChildren(h('div', { class: 'task', testid: 'task-view', data: { reviewId: x.id, state: x.state } },
    h('div', { class: 'taskhead' },
      h('a', { href: '#/queue', class: 'back', i18n: 'task.back' }), h('h2', { text: x.id }),
      queueBadge(x.queue), kindBadge(x.kind), stateBadge(x.state), prioBadge(x), slaEl(x), tagList(x.tags)),
    whyLine(x),
    h('div', { class: 'cols' },
      h('div', { class: 'col main' }, questionBlock(x), conversationBlock(x), draftBlock(x), evidenceBlock(x), recordBlocks(x)),
      h('div', { class: 'col side' }, open ? decisionPanel(x) : outcomeBlock(x), hitsBlock(x), tokensBlock(x), eventsBlock(x)))));
  tick();
}

function outcomeBlock(x) {
  const action = x.decision?.action || (ui.outcome?.id === x.id ? ui.outcome.action : '');
  const text = action ? t('outcome.decided', { a: action, l: tl('action', action) })
    : t('outcome.state', { s: x.state, l: tl('state', x.state) });
  return h('section', { class: 'block decide' },
    h('div', { class: 'outcome-msg', testid: 'task-outcome', data: { action }, text }),
    h('a', { href: '#/queue', i18n: 'task.back' }));
}

function decisionPanel(x) {
  const atts = x.required_attestations || [];
  const allTicked = atts.every((a) => ui.checked.has(a));
  const hasDraft = Boolean(x.draft);
  const mine = x.state === 'claimed' && x.claimed_by === me.user;
  const claimNote = x.state === 'pending' ? t('task.unclaimed') : mine ? t('task.claimedMe')
    : `${t('task.claimedBy', { u: x.claimed_by || '?' })}${x.claim_expires_ms ? ` (→ ${fmtTime(x.claim_expires_ms)})` : ''}`;

  // Without a draft (a follow-up, a human decision) writing the answer is the way to decide:
  // the edit box is open from the start, and approve stays disabled with the reason beside it.
  const mode = ui.mode || (hasDraft ? '' : 'edit');

  // enable/disable decision buttons as boxes are ticked and text is typed
  const btn = {};
  const sync = () => {
    const ok = atts.every((a) => ui.checked.has(a));
    btn.approve.disabled = !ok || !hasDraft;
    if (btn.editSubmit) btn.editSubmit.disabled = !ok;
    btn.reject.disabled = !ok;
    if (btn.rejectSubmit) btn.rejectSubmit.disabled = !ok || !ui.rejectText.trim();
    hint.hidden = ok;
  };
  const toggle = (m) => {
    ui.mode = mode === m ? (hasDraft ? '' : 'edit') : m;
    if (ui.mode === 'edit' && ui.editText == null) ui.editText = x.draft || '';
    keepFocus(renderTask);
    if (ui.mode === 'edit') view.querySelector('textarea[data-testid="edit-text"]')?.focus();
  };

  const hint = h('p', { class: 'muted small', i18n: 'task.tickAll', hidden: allTicked });
  const noDraftKey = isPromise(x) ? 'task.approveNoPromise' : 'task.approveNoDraft';
  btn.approve = h('button', { class: 'primary', testid: 'approve', i18n: 'task.approve', title: hasDraft ? null : t(noDraftKey),
    on: { click: () => decide(x, 'approve') } });
  btn.edit = h('button', { testid: 'edit', i18n: hasDraft ? 'task.edit' : 'task.write', on: { click: () => toggle('edit') } });
  btn.reject = h('button', { class: 'danger', testid: 'reject', i18n: 'task.reject', on: { click: () => toggle('reject') } });
  let extra = null;
  if (mode === 'edit') {
    btn.editSubmit = h('button', { class: 'primary', testid: 'edit-submit', i18n: hasDraft ? 'task.editSubmit' : 'task.sendAnswer',
      on: { click: () => decide(x, 'edit') } });
    extra = h('div', { class: 'sub' },
      h('textarea', { testid: 'edit-text', rows: 6, value: ui.editText ?? (x.draft || ''),
        placeholder: hasDraft ? null : t(isPromise(x) ? 'task.answerPromisePh' : 'task.answerPh'),
        'aria-label': t(hasDraft ? 'task.edit' : 'task.write'),
        on: { input: (e) => { ui.editText = e.target.value; } } }),
      btn.editSubmit);
  } else if (mode === 'reject') {
    btn.rejectSubmit = h('button', { class: 'danger', testid: 'reject-submit', i18n: 'task.rejectSubmit', on: { click: () => decide(x, 'reject') } });
    extra = h('div', { class: 'sub' },
      h('textarea', { testid: 'reject-reason', rows: 3, placeholder: t('task.rejectReason'), value: ui.rejectText,
        on: { input: (e) => { ui.rejectText = e.target.value; sync(); } } }),
      btn.rejectSubmit);
  }

  const panel = h('section', { class: 'block decide' }, h('h3', { i18n: 'task.decide' }),
    h('div', { class: 'claimrow' }, h('span', { class: 'muted small', text: claimNote }),
      h('button', { testid: 'claim', i18n: 'task.claim', disabled: mine, on: { click: () => claim(x) } })),
    atts.length ? h('fieldset', { class: 'atts' }, h('legend', { i18n: 'task.attest' }),
      atts.map((a) => h('label', {},
        h('input', { type: 'checkbox', testid: 'attestation', value: a, checked: ui.checked.has(a),
          on: { change: (e) => { if (e.target.checked) ui.checked.add(a); else ui.checked.delete(a); sync(); } } }),
        h('span', { text: a })))) : null,
    hint,
    addOnSend(x),
    h('div', { class: 'btns' }, btn.approve, btn.edit, btn.reject),
    hasDraft ? null : h('p', { class: 'muted small nodraft', testid: 'approve-hint', i18n: noDraftKey }),
    extra);
  sync();
  return panel;
}

async function claim(x) {
  try {
    const task = await api('POST', `/v1/reviews/${enc(x.id)}/claim`);
    clearError();
    if (task?.id) swap('task', task);
    keepFocus(renderTask);
  } catch (e) { handleError(e); }
}

async function decide(x, action) {
  const body = { action, attestations: (x.required_attestations || []).filter((a) => ui.checked.has(a)) };
  if (action === 'edit') {
    body.text = (ui.editText || '').trim();
    if (!body.text) return showError(t('err.emptyAnswer'));
  }
  if (action === 'reject') {
    body.reason = ui.rejectText.trim();
    if (!body.reason) return showError(t('err.emptyReason'));
  }
  for (const b of view.querySelectorAll('.decide button')) b.disabled = true;  // no double submit
  try {
    const task = await api('POST', `/v1/reviews/${enc(x.id)}/decision`, body);
    clearError();
    ui.outcome = { id: x.id, action };
    if (task?.id) swap('task', task);
    renderTask();
    setTimeout(() => { if (current.route === 'task' && current.id === x.id) location.hash = '#/queue'; }, 2500);
  } catch (e) {
    handleError(e);
    keepFocus(renderTask);
  }
}

// ---- hand-offs view

async function loadHandoffs() {
  const res = await api('GET', '/v1/handoffs?limit=500');
  setClock(res.now_ms);
  return swap('handoffs', { list: res.data || [], more: Boolean(res.has_more) });
}

// Hand-offs are ordered by urgency, most urgent first:
//   1. a customer waiting for a person: nobody has answered since the hand-off, or the customer
//      wrote after the last reply;
//   2. risk: a VIP customer; a red line (a rule left the decision to a person) or a tag of one,
//      a complaint or repeated weak answers (RISK_TAGS, the demo's and the pipeline's names);
//   3. the nearest (or longest passed) deadline;
//   4. the oldest first.
const RISK_TAGS = new Set(['complaint_or_person', 'degraded_3x', 'credit_decision', 'medical_diagnosis',
  'legal_judgement', 'claim_decision']);
function lastLine(x) {
  const r = (x.agent_replies || []).reduce((m, a) => Math.max(m, a.at || 0), 0);
  const c = (x.customer_messages || []).reduce((m, a) => Math.max(m, a.at || 0), 0);
  return { waiting: !r || c > r };
}
const dueOf = (x) => x.handoff_deadline_ms ?? x.deadline_ms ?? (x.created_ms || 0) + (x.sla_ms || 0);
function riskOf(x) {
  let r = 0;
  if (x.tier === 'vip' || (x.priority || 0) >= 10) r += 2;
  if (x.kind === 'human_decision' || (x.tags || []).some((g) => RISK_TAGS.has(g)) ||
    (x.policy_hits || []).some((p) => (p.actions || []).includes('human_decision'))) r += 1;
  return r;
}
function byUrgency(a, b) {
  return (lastLine(b).waiting - lastLine(a).waiting) || (riskOf(b) - riskOf(a)) ||
    (dueOf(a) - dueOf(b)) || ((a.created_ms || 0) - (b.created_ms || 0));
}

function renderHandoffs() {
  const h0 = store.handoffs;
  if (!h0) return;
  const list = [...h0.list].sort(byUrgency);
  const pages = Math.max(1, Math.ceil(list.length / HANDOFF_PAGE));
  ui.handoffPage = Math.min(ui.handoffPage, pages - 1);
  const first = ui.handoffPage * HANDOFF_PAGE;
  const shown = list.slice(first, first + HANDOFF_PAGE);
  const go = (d) => { ui.handoffPage += d; keepFocus(renderHandoffs); window.scrollTo(0, 0); };
  const pager = list.length > HANDOFF_PAGE ? h('div', { class: 'pager', testid: 'handoff-pager' },
    h('button', { testid: 'handoff-prev', i18n: 'handoffs.prev', disabled: ui.handoffPage === 0, on: { click: () => go(-1) } }),
    h('span', { class: 'muted small', testid: 'handoff-page', text: t('handoffs.page', { a: first + 1, b: first + shown.length, n: list.length }) }),
    h('button', { testid: 'handoff-next', i18n: 'handoffs.next', disabled: ui.handoffPage >= pages - 1, on: { click: () => go(1) } })) : null;
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
  const open = ui.openHandoffs.has(x.id);
  const wait = lastLine(x);
  const due = dueOf(x), late = Date.now() + clockOffset - due;
  const toggle = () => {
    if (ui.openHandoffs.has(x.id)) ui.openHandoffs.delete(x.id);
    else ui.openHandoffs.add(x.id);
    keepFocus(renderHandoffs);
  };
  const risky = (x.tags || []).filter((g) => RISK_TAGS.has(g));
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
      h('textarea', { testid: 'handoff-reply-text', rows: 3, placeholder: t('handoffs.placeholder'), value: ui.replies[x.id] || '',
        on: { input: (e) => { ui.replies[x.id] = e.target.value; } } }),
      h('div', { class: 'btns' },
        h('button', { class: 'primary', testid: 'handoff-reply-send', i18n: 'handoffs.send', on: { click: (e) => reply(x, false, e.target) } }),
        h('button', { testid: 'handoff-close', i18n: 'handoffs.close', on: { click: (e) => reply(x, true, e.target) } })))) : null);
}

async function reply(x, close, button) {
  const text = (ui.replies[x.id] || '').trim();
  if (!close && !text) return showError(t('err.emptyReply'));
  button.disabled = true;
  try {
    await api('POST', `/v1/handoffs/${enc(x.id)}/reply`, { text, close });
    clearError();
    ui.replies[x.id] = '';
    seen.handoffs = '';  // force a re-render even if the list looks the same
    await refresh(true);
  } catch (e) {
    button.disabled = false;
    handleError(e);
  }
}

// ---- supervisor view

async function loadStats() {
  const s = await api('GET', '/v1/reviews/stats');
  setClock(s.now_ms);
  const m = await api('GET', '/v1/monitor').catch(() => null);
  return swap('stats', { ...s, monitor: m });
}

function renderStats() {
  const s = store.stats;
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
      mon ? chartCard('sup.far', (mon.days || []).map((d) => ({ label: day(d.day_ms), values: [Math.round(d.far * 1000) / 10], note: `${d.good}/${d.good + d.bad}` })),
        [t('sup.far')], 2) : null)));
}

// ---- governance view: release freeze, fairness gate, experiments (supervisors)

const METRICS = ['resolved', 'far', 'handed_off', 'reviewed', 'rated_good', 'bad_rating', 'latency_ms', 'cost'];

async function loadGovernance() {
  const [fair, rel, exps] = await Promise.all([api('GET', '/v1/fairness'), api('GET', '/v1/releases'), api('GET', '/v1/experiments')]);
  const reports = await Promise.all((exps.experiments || []).map((e) => api('GET', `/v1/experiments/${enc(e.name)}?${/^\d+$/.test(ui.look) ? `turns=${ui.look}` : `look=${ui.look}`}`).catch(() => null)));
  return swap('gov', { fair, rel, exps: exps.experiments || [], reports, look: ui.look });
}

const pct = (x) => (typeof x === 'number' ? `${(x * 100).toFixed(1)}%` : '—');
const num = (x, d = 3) => (typeof x === 'number' ? x.toFixed(d) : '—');
const fmtP = (p) => (typeof p !== 'number' ? '—' : p < 0.0001 ? p.toExponential(1) : p.toFixed(4));

function freezeBlock(state) {
  if (!state?.frozen) {
    return h('div', { class: 'block', testid: 'release-state' }, h('span', { class: 'badge ok', i18n: 'gov.open' }),
      state?.by ? h('span', { class: 'muted', text: ` ${t('gov.lastChange', { by: state.by, t: fmtTime(state.at) })}` }) : null);
  }
  // the reason being written survives the view's periodic refresh
  const why = h('textarea', { rows: 2, testid: 'unfreeze-why', placeholder: t('gov.unfreezeWhy'), value: ui.unfreezeWhy,
    on: { input: (e) => { ui.unfreezeWhy = e.target.value; } } });
  const btn = h('button', { type: 'button', class: 'primary', testid: 'unfreeze', i18n: 'gov.unfreeze' });
  btn.addEventListener('click', async () => {
    if (why.value.trim().length < 10) return showError(t('gov.whyShort'));
    btn.disabled = true;
    try { await api('POST', '/v1/releases/unfreeze', { why: why.value.trim() }); ui.unfreezeWhy = ''; clearError(); await refresh(true); } catch (e) { handleError(e); } finally { btn.disabled = false; }
  });
  return h('div', { class: 'block frozen', testid: 'release-state' },
    h('div', { class: 'error', testid: 'frozen-banner', text: t('gov.frozen', { by: state.by || '—', why: state.why || '' }) }),
    me.role === 'supervisor' ? h('div', { class: 'sub' }, why, btn) : null);
}

function fairnessBlock(f) {
  const attrs = f?.attributes || [];
  const outcome = (a, o) => {
    const m = a[o] || {};
    if (!m.turns) return h('p', { class: 'small', data: { outcome: o } }, h('b', { i18n: `gov.outcome.${o}` }), ' ', h('span', { class: 'muted', i18n: 'sup.noData' }));
    return h('div', { class: 'outcome', data: { outcome: o } },
      h('p', { class: 'small' }, h('b', { i18n: `gov.outcome.${o}` }), ' ',
        h('span', { class: `badge ${m.gate_closed ? 'bad' : 'ok'}`, testid: 'gate', i18n: m.gate_closed ? 'gov.gateClosed' : 'gov.gateOpen' }), ' ',
        t('gov.dpd', { d: num(m.dpd), lo: num(m.ci_low), hi: num(m.ci_high), r: num(m.dpr, 2), n: m.turns ?? 0, g: m.min_group ?? 0 })),
      m.groups?.length ? chartCard(`gov.rateBy.${o}`, m.groups.map((g) => ({ label: g.group.length === 32 ? g.group.slice(0, 8) : g.group, values: [Math.round(g.rate * 1000) / 10], note: `${g.selected}/${g.n}` })), [t('gov.rate')])
        : null);
  };
  return h('section', { class: 'block', testid: 'fairness' },
    h('h3', { i18n: 'gov.fairness' }),
    h('p', { class: 'muted small', text: t('gov.fairNote', { l: pct(f?.limit), m: f?.min_group ?? '—', d: f?.window_days ?? '—' }) }),
    attrs.length ? attrs.map((a) => h('div', { class: 'attr', data: { attribute: a.attribute } },
      h('h4', { text: a.attribute }), outcome(a, 'delivered'), outcome(a, 'review_approved')))
      : h('p', { class: 'muted', i18n: 'gov.noAttrs' }));
}

// The cumulative difference look by look inside its confidence sequence.
function sequenceChart(series) {
  const W = 560, H = 200, L = 44, R = 8, T = 10, B = 24;
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: 'chart', 'data-testid': 'sequence-chart', role: 'img' });
  if (!series?.length) {
    root.append(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', 'font-size': 13, fill: '#6b7480' }, t('sup.noData')));
    return root;
  }
  const lo = Math.min(0, ...series.map((p) => Math.max(p.low, -1))), hi = Math.max(0, ...series.map((p) => Math.min(p.high, 1)));
  const span = hi - lo || 1, n = series.length;
  const x = (i) => L + (n === 1 ? (W - L - R) / 2 : (i / (n - 1)) * (W - L - R));
  const y = (v) => T + (1 - (Math.min(Math.max(v, lo), hi) - lo) / span) * (H - T - B);
  // upper bound left to right, then the lower bound back
  const band = series.map((p, i) => `${x(i)},${y(p.high)}`).concat(series.map((p, i) => `${x(i)},${y(p.low)}`).reverse());
  root.append(svg('polygon', { points: band.join(' '), fill: '#1f6feb22', stroke: 'none' }),
    svg('line', { x1: L, x2: W - R, y1: y(0), y2: y(0), stroke: '#6b7480', 'stroke-dasharray': '4 3' }),
    svg('polyline', { points: series.map((p, i) => `${x(i)},${y(p.diff)}`).join(' '), fill: 'none', stroke: PALETTE[0], 'stroke-width': 2 }),
    svg('text', { x: L - 4, y: y(hi) + 4, 'text-anchor': 'end', 'font-size': 10, fill: '#6b7480' }, `${(hi * 100).toFixed(1)}`),
    svg('text', { x: L - 4, y: y(lo) + 4, 'text-anchor': 'end', 'font-size': 10, fill: '#6b7480' }, `${(lo * 100).toFixed(1)}`),
    svg('text', { x: L - 4, y: y(0) + 4, 'text-anchor': 'end', 'font-size': 10, fill: '#6b7480' }, '0'));
  series.forEach((p, i) => {
    if (i % Math.ceil(n / 10) === 0) root.append(svg('text', { x: x(i), y: H - 6, 'text-anchor': 'middle', 'font-size': 10, fill: '#6b7480' }, String(p.day)));
    root.append(svg('circle', { cx: x(i), cy: y(p.diff), r: 2.5, fill: p.p_always_valid < 0.01 ? PALETTE[1] : PALETTE[0] },
      svg('title', {}, `look ${p.day}: ${(p.diff * 100).toFixed(2)} pts [${(p.low * 100).toFixed(2)}, ${(p.high * 100).toFixed(2)}], p ${fmtP(p.p_always_valid)}`)));
  });
  return root;
}

function experimentBlock(e, rep) {
  const m = rep?.metrics || {};
  const variants = (m.resolved?.variants || []).map((v) => v.variant);
  const cell = (metric, variant) => {
    const v = (m[metric]?.variants || []).find((x) => x.variant === variant);
    if (!v) return h('td', { text: '—' });
    const sig = v.first_significant_day >= 0;
    const val = metric === 'latency_ms' ? num(v.mean, 2) : metric === 'cost' ? num(v.mean, 4) : pct(v.mean);
    const base = metric === 'latency_ms' ? num(v.control_mean, 2) : metric === 'cost' ? num(v.control_mean, 4) : pct(v.control_mean);
    return h('td', { class: sig ? 'sig' : '', data: { metric, variant } }, `${val} `, h('small', { class: 'muted', text: `vs ${base} · p ${fmtP(v.p_always_valid)}${sig ? ` · ${t('gov.sigFrom', { d: v.first_significant_day })}` : ''}` }));
  };
  return h('section', { class: 'block', testid: 'experiment', data: { experiment: e.name } },
    h('h3', {}, `${t('gov.experiment')} ${e.name}`),
    h('table', { class: 'queue' },
      h('thead', {}, h('tr', {}, [t('gov.variant'), t('gov.share'), t('gov.answeredBy'), 'n'].map((c) => h('th', { text: c })))),
      h('tbody', {}, e.variants.map((v) => {
        const arm = (m.resolved?.arms || []).find((a) => a.name === v.name);
        return h('tr', {}, h('td', { text: v.name }), h('td', { text: String(v.share) }),
          h('td', { text: `${v.answered_by === 'release' ? v.release : v.answered_by === 'config' ? v.config.split('/').pop() : `${t('gov.inForce')}${v.release ? ` ${v.release}` : ''}`} · ${v.hash.slice(0, 12)}` }),
          h('td', { text: String(arm?.rows ?? 0) }));
      }))),
    rep?.metrics?.resolved?.srm?.mismatch ? h('div', { class: 'error', i18n: 'gov.srm' }) : null,
    variants.length ? h('table', { class: 'queue', testid: 'experiment-metrics' },
      h('thead', {}, h('tr', {}, h('th', { i18n: 'gov.metric' }), variants.map((v) => h('th', { text: `${v} − ${rep.control}` })))),
      h('tbody', {}, METRICS.map((mt) => h('tr', {}, h('td', { text: tl('metric', mt) }), variants.map((v) => cell(mt, v))))))
      : h('p', { class: 'muted', i18n: 'sup.noData' }),
    variants.map((v) => h('figure', { class: 'chartcard' },
      h('figcaption', { text: t('gov.sequence', { v, c: rep.control }) }),
      sequenceChart((m.resolved.variants.find((x) => x.variant === v) || {}).days))));
}

function renderGovernance() {
  const g = store.gov;
  if (!g) return;
  view.replaceChildren(h('div', { class: 'sup', testid: 'governance-view' },
    h('div', { class: 'toolbar' }, h('h2', { i18n: 'gov.title' }),
      h('label', { class: 'muted' }, t('gov.look'), ' ', h('select', { testid: 'look', on: { change: (e) => { ui.look = e.target.value; refresh(true); } } },
        ['100', '1h', '1d'].map((v) => h('option', { value: v, selected: ui.look === v, text: t(`gov.look.${v}`) }))))),
    freezeBlock(g.rel?.state),
    fairnessBlock(g.fair),
    g.exps.length ? g.exps.map((e, i) => experimentBlock(e, g.reports[i])) : h('p', { class: 'muted', i18n: 'gov.noExperiments' }),
    h('section', { class: 'block', testid: 'releases' }, h('h3', { i18n: 'gov.releases' }),
      g.rel?.releases?.length ? null : h('p', { class: 'muted', i18n: 'gov.noReleases' }),
      h('table', { class: 'queue' }, h('tbody', {}, (g.rel?.releases || []).map((r) => h('tr', {},
        h('td', { text: `${r.name} v${r.version}` }), h('td', { text: r.state }), h('td', { class: 'mono', text: (r.hash || '').slice(0, 16) }))))))));
}

// ---- audit view: the signed tree head and the key to check it with

async function text(path) {
  const res = await fetch(path, { credentials: 'same-origin' });
  if (!res.ok) {
    let msg = `HTTP ${res.status}`;
    try { msg = (await res.json()).error.message; } catch { /* not JSON */ }
    const err = new Error(msg);
    err.status = res.status;
    throw err;
  }
  return res.text();
}

async function loadAudit() {
  const [checkpoint, key] = await Promise.all([text('/v1/audit/checkpoint'), text('/v1/audit/key')]);
  return swap('audit', { checkpoint, key: key.trim() });
}

function renderAudit() {
  const a = store.audit;
  if (!a) return;
  const [origin, size] = a.checkpoint.split('\n');
  view.replaceChildren(h('div', { class: 'sup', testid: 'audit-view' },
    h('div', { class: 'toolbar' }, h('h2', { i18n: 'audit.title' })),
    h('section', { class: 'block' }, h('h3', { i18n: 'audit.head' }),
      h('p', { text: t('audit.size', { n: size, o: origin }) }),
      h('pre', { class: 'mono', testid: 'audit-checkpoint', text: a.checkpoint })),
    h('section', { class: 'block' }, h('h3', { i18n: 'audit.key' }),
      h('pre', { class: 'mono', testid: 'audit-key', text: a.key }),
      h('p', { class: 'muted small', i18n: 'audit.howto' }),
      h('pre', { class: 'mono', text: `trustgate audit check --url ${location.origin} --token TOKEN --key '${a.key}' --old held.checkpoint --save held.checkpoint` }))));
}

// ---- SVG bar charts

const NS = 'http://www.w3.org/2000/svg';
const PALETTE = ['#1f6feb', '#1a7f37', '#c62828', '#b26b00'];
function svg(tag, attrs, ...kids) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of kids) if (c != null) el.append(c);
  return el;
}

function chartCard(titleKey, groups, series, labelEvery = 1) {
  const legend = series.length > 1 ? h('div', { class: 'legend' }, series.map((name, i) => {
    const sw = h('span', { class: 'sw' });
    sw.style.background = PALETTE[i];
    return h('span', {}, sw, name);
  })) : null;
  return h('figure', { class: 'chartcard' }, h('figcaption', { i18n: titleKey }), barChart(groups, series, labelEvery), legend);
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

// Grouped vertical bars: groups [{label, values[], note?}], one colour per series.
function barChart(groups, series, labelEvery) {
  const W = 560, H = 200, L = 34, R = 8, T = 10, B = 28;
  const iw = W - L - R, ih = H - T - B;
  const { top: max, ticks } = yTicks(groups.flatMap((g) => g.values.map((v) => v || 0)));
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: 'chart', 'data-testid': 'chart', role: 'img' });
  for (const v of ticks) {  // grid lines and y labels
    const y = T + ih - (v / max) * ih;
    root.append(svg('line', { x1: L, x2: W - R, y1: y, y2: y, stroke: '#dde1e7' }),
      svg('text', { x: L - 4, y: y + 4, 'text-anchor': 'end', 'font-size': 10, fill: '#6b7480', class: 'tick', 'data-testid': 'chart-tick' }, String(v)));
  }
  if (!groups.length) {
    root.append(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', 'font-size': 13, fill: '#6b7480' }, t('sup.noData')));
    return root;
  }
  const gw = iw / groups.length, bw = Math.max(1, (gw * 0.8) / series.length);
  groups.forEach((g, i) => {
    g.values.forEach((v, j) => {
      const bh = ((v || 0) / max) * ih;
      root.append(svg('rect', { x: L + i * gw + gw * 0.1 + j * bw, y: T + ih - bh, width: Math.max(0.5, bw - 1), height: bh, fill: PALETTE[j] },
        svg('title', {}, `${g.label} · ${series[j]}: ${v || 0}${g.note ? ` (${g.note})` : ''}`)));
    });
    if (i % labelEvery === 0) {
      root.append(svg('text', { x: L + i * gw + gw / 2, y: H - B + 14, 'text-anchor': 'middle', 'font-size': 10, fill: '#6b7480' }, excerpt(g.label, 12)));
    }
  });
  return root;
}

// ---- routing

const routes = {
  queue: { load: loadQueue, render: renderQueue },
  task: { load: loadTask, render: renderTask },
  handoffs: { load: loadHandoffs, render: renderHandoffs },
  supervisor: { load: loadStats, render: renderStats },
  governance: { load: loadGovernance, render: renderGovernance },
  audit: { load: loadAudit, render: renderAudit },
};

function parseHash() {
  const m = location.hash.match(/^#\/(queue|handoffs|supervisor|governance|audit|task)(?:\/([^/]+))?$/);
  if (!m || (m[1] === 'task' && !m[2])) return null;
  return { route: m[1], id: m[2] ? decodeURIComponent(m[2]) : '' };
}
const defaultRoute = () => (me?.role === 'agent' ? 'handoffs' : me?.role === 'auditor' ? 'audit' : 'queue');
// which views each role may open (the server checks every call too)
const ALLOWED = {
  reviewer: ['queue', 'task', 'handoffs', 'audit'],
  agent: ['queue', 'task', 'handoffs', 'audit'],
  supervisor: ['queue', 'task', 'handoffs', 'supervisor', 'governance', 'audit'],
  auditor: ['audit'],
};

async function navigate() {
  if (!me) return;
  const next = parseHash();
  if (!next || !(ALLOWED[me.role] || []).includes(next.route)) {
    history.replaceState(null, '', `#/${defaultRoute()}`);
    return navigate();
  }
  if (next.route !== current.route || next.id !== current.id) {
    if (current.route === 'task' || next.route === 'task') resetTaskUi();
    current = next;
    clearError();
    view.replaceChildren(h('p', { class: 'muted', i18n: 'loading' }));
  }
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.dataset.route === (current.route === 'task' ? 'queue' : current.route));
  }
  await refresh(true);
}

// A refresh overtaken by a newer one does not render; what it loaded, or the render it was asked
// for, is left to the newest (unrendered), which may itself load nothing new: otherwise a task
// opened just as a live event arrives stays on "loading" until the next change.
let unrendered = false;
async function refresh(force) {
  const r = routes[current.route];
  if (!r || !me) return;
  const my = ++seq;
  try {
    const changed = await r.load();
    if (changed || force) unrendered = true;
    if (my === seq && unrendered) {
      unrendered = false;
      keepFocus(r.render);
    }
  } catch (e) {
    if (my === seq) handleError(e);
  }
}

// Re-render without losing the caret in the textarea being typed into.
function keepFocus(render) {
  const a = document.activeElement;
  const keep = a && a.tagName === 'TEXTAREA' && view.contains(a)
    ? { tid: a.dataset.testid, rid: a.closest('[data-review-id]')?.dataset.reviewId, s: a.selectionStart, e: a.selectionEnd } : null;
  render();
  if (!keep) return;
  const scope = keep.rid ? view.querySelector(`[data-review-id="${CSS.escape(keep.rid)}"]`) : view;
  const el = scope?.querySelector(`textarea[data-testid="${keep.tid}"]`);
  if (el) { el.focus(); el.setSelectionRange(keep.s, keep.e); }
}

// ---- session, SSE

function connectSSE() {
  if (es) es.close();
  clearTimeout(esRetry);
  const conn = $('#conn');
  conn.hidden = false;
  setConn(conn, 'connecting');
  const src = es = new EventSource('/v1/reviews/events');
  src.onopen = () => setConn(conn, 'live');
  src.onerror = () => {
    if (src.readyState !== EventSource.CLOSED) return setConn(conn, 'reconnecting');
    setConn(conn, 'off');  // the browser gave up (e.g. session expired): check and retry
    esRetry = setTimeout(async () => {
      if (!me || es !== src) return;
      try { await api('GET', '/console/api/me'); connectSSE(); } catch (e) { handleError(e); }
    }, 5000);
  };
  src.addEventListener('review', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => refresh(false), 200);
  });
}

function startSession(who) {
  me = who;
  $('#login').hidden = true;
  $('#nav').hidden = false;
  $('#logout').hidden = false;
  $('#who').textContent = `${me.user} · ${tl('role', me.role)}`;
  const items = [['queue', 'nav-queue', 'nav.queue'], ['handoffs', 'nav-handoffs', 'nav.handoffs'],
    ['supervisor', 'nav-supervisor', 'nav.supervisor'], ['governance', 'nav-governance', 'nav.governance'],
    ['audit', 'nav-audit', 'nav.audit']].filter(([r]) => (ALLOWED[me.role] || []).includes(r));
  $('#nav').replaceChildren(...items.map(([r, tid, key]) => h('a', { href: `#/${r}`, testid: tid, i18n: key, data: { route: r } })));
  if (me.role !== 'auditor') connectSSE();  // auditors read the log, not the queue
  // the deployment's words for tags, events, rules and queues; without them codes are shown
  api('GET', '/console/api/labels').then((r) => setLabels(r?.labels), () => setLabels({}))
    .finally(() => { if (me === who) navigate(); });
}

function showLogin() {
  me = null;
  setLabels({});
  if (es) { es.close(); es = null; }
  clearTimeout(esRetry);
  current = { route: '', id: '' };
  for (const k of Object.keys(store)) { delete store[k]; delete seen[k]; }
  view.replaceChildren();
  $('#nav').hidden = true;
  $('#nav').replaceChildren();
  $('#logout').hidden = true;
  $('#conn').hidden = true;
  $('#who').textContent = '';
  $('#login').hidden = false;
  $('#login-user').focus();
}

$('#login').addEventListener('submit', async (e) => {
  e.preventDefault();
  const btn = $('#login-submit');
  btn.disabled = true;
  try {
    const who = await api('POST', '/console/api/login', { user: $('#login-user').value.trim(), password: $('#login-password').value });
    clearError();
    $('#login-password').value = '';
    startSession(who);
  } catch (err) {
    showError(err instanceof TypeError ? t('err.network') : err.message);
  } finally { btn.disabled = false; }
});

$('#logout').addEventListener('click', async () => {
  try { await api('POST', '/console/api/logout', {}); } catch { /* logged out anyway */ }
  clearError();
  history.replaceState(null, '', location.pathname);  // the next user starts on their default view
  showLogin();
});

window.addEventListener('hashchange', navigate);

// Supervisor numbers every 10 s; other views poll only while the event stream is down.
setInterval(() => {
  if (me && (current.route === 'supervisor' || current.route === 'governance' || $('#conn').dataset.state !== 'live')) refresh(false);
}, 10000);

initLangToggle($('#lang'), () => {
  if (!me) return;
  $('#who').textContent = `${me.user} · ${tl('role', me.role)}`;
  keepFocus(routes[current.route]?.render || (() => {}));
  applyI18n();
});

api('GET', '/console/api/me').then(startSession, (e) => {
  showLogin();
  if (e.status !== 401) showError(e instanceof TypeError ? t('err.network') : e.message);
});
