// trustgate console blocks shared by the task view and the hand-off cards: badges, the SLA
// countdown, and the task's context (question, conversation, draft, evidence, rule hits, intent
// explanation, events, decision record) plus the source viewer they open.
import { t, tl, label } from '/common/i18n.js';
import { $, h } from '/common/dom.js';
import { fmtDur, fmtTime, fmtYuan, fmtValue } from '/common/format.js';
import { renderMarkdown } from '/common/markdown.js';
import { api, enc, handleError, serverNow } from '/console/app.js';

export const badge = (cls, text, title) => h('span', { class: `badge ${cls}`, text, title });
export const queueBadge = (q) => badge('queue', label(q, 'queue'), q);
export const kindBadge = (k) => badge(`kind ${k}`, tl('kind', k), k);
export const stateBadge = (s) => badge(`state ${s}`, tl('state', s), s);
export const prioBadge = (x) => h('span', {}, x.tier === 'vip' ? badge('vip', 'VIP') : null, h('span', { class: 'prio', text: String(x.priority ?? '') }));
// Tags in the interface's language (the config's labels); the code stays in the tooltip.
export const tagList = (tags) => h('span', { class: 'tags' }, (tags || []).map((g) =>
  h('span', { class: `chip tag ${g === 'review_sla_breached' ? 'bad' : ''}`, text: label(g), title: g, data: { tag: g } })));
const block = (titleKey, ...kids) => h('section', { class: `block b-${titleKey.split('.').pop()}` }, h('h3', { i18n: titleKey }), ...kids);

// Live SLA countdown; tick() fills it in every second.
export function slaEl(x) {
  const live = (x.state === 'pending' || x.state === 'claimed') && x.deadline_ms;
  return h('span', {
    class: 'sla', testid: 'sla-countdown',
    data: live ? { deadline: x.deadline_ms, sla: x.sla_ms, warn: x.sla_warning ? '1' : '' } : { level: 'none' },
    text: live ? '' : '—',
  });
}
export function tick() {
  const now = serverNow();
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

export function questionBlock(x) {
  const needles = (x.policy_hits || []).map((p) => p.trigger?.text);
  return block('task.question', h('div', { class: 'question', testid: 'task-question' }, highlight(x.question, needles)));
}

export function conversationBlock(x) {
  const c = x.conversation || [];
  if (!c.length) return null;
  return block('task.conversation', h('ol', { class: 'conv' },
    c.map((m) => h('li', { class: `r-${m.role}` }, h('b', { text: tl('role', m.role) }), h('span', { text: m.content })))));
}

// A follow-up task is a promise the gateway made: the customer was told to wait (the holding
// reply) and nobody has answered yet, so there is no draft; the person's answer replaces the
// promise on the customer's screen.
export const isPromise = (x) => x.kind === 'follow_up';

// handoff: shown on a hand-off card, where the agent replies in the box below it.
export function draftBlock(x, handoff = false) {
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
export function addOnSend(x) {
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

export function evidenceBlock(x) {
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

export function hitsBlock(x) {
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
export function whyLine(x) {
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

export function tokensBlock(x) {
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

export function eventsBlock(x) {
  return block('task.events', h('ol', { class: 'timeline' },
    (x.events || []).map((e) => h('li', {},
      h('time', { text: fmtTime(e.at) }), ' ', h('b', { text: label(e.event), title: e.event, data: { event: e.event } }), ' ',
      h('span', { class: 'muted', text: e.actor || '' }),
      e.reason ? h('div', { class: 'small', text: e.reason }) : null))));
}

// Decision record, final answer and agent replies once they exist.
export function recordBlocks(x) {
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
