// trustgate chat page: customer chat; held answers are replaced in place when a person decides.
// The page's title, greeting and example questions are the deployment's (web.texts in the
// config, from GET /chat/api/texts); without them it uses generic words and offers no examples.
import { t, initLangToggle, pageText, setTexts } from '/common/i18n.js';
import { $, h } from '/common/dom.js';
import { openStream } from '/common/events.js';

const log = $('#log');
const input = $('#input');
const sendBtn = $('#send');
const conn = $('#conn');
const held = new Map();        // review_id -> held bot message element
let sending = false;

// Disclaimers an answer may open with, shown as a banner above it. The page knows only what the
// gateway told it, in the customer's language: the texts the policies put around a delivered
// answer (a reply's trustgate.disclaimers) and those put in front of a person's answer (an
// answer event's people_answers.prefix). None is written here: they come from the config.
const disclaimers = new Set();
const learn = (list) => {
  for (const d of Array.isArray(list) ? list : []) if (typeof d === 'string' && d.trim()) disclaimers.add(d.trim());
};

// ---- messages

function scrollDown() { log.scrollTop = log.scrollHeight; }

function addMsg(role, text) {
  const msg = h('div', { class: `msg ${role}`, testid: 'chat-msg', data: { role } },
    h('div', { class: 'who', i18n: `who.${role}` }),
    h('div', { class: 'body' }));
  setBody(msg, text);
  log.append(msg);
  scrollDown();
  return msg;
}

// Message text; a disclaimer it opens with becomes a banner.  (Found by its text, not by the
// first sentence of the answer: in English that cut a whole paragraph, and a holding reply has
// no disclaimer at all.)
function setBody(msg, text) {
  let rest = String(text ?? '');
  const parts = [];
  const known = [...disclaimers].find((d) => rest.startsWith(d));
  if (known) {
    parts.push(h('div', { class: 'disclaimer', testid: 'chat-disclaimer', text: known }));
    rest = rest.slice(known.length).trimStart();
  }
  if (rest) parts.push(h('div', { class: 'text', text: rest }));
  msg.querySelector('.body').replaceChildren(...parts);
}

// Marker below a held message: held | decided | handed_off.
function setState(msg, state) {
  msg.dataset.state = state;
  let mark = msg.querySelector('.marker');
  if (!mark) {
    mark = h('div', { class: 'marker' });
    msg.querySelector('.body').after(mark);
  }
  mark.dataset.i18n = `mark.${state}`;
  mark.textContent = t(`mark.${state}`);
}

// A reply that is not an answer: anything but a delivered one, a script or holding text (a rule's
// script, the low-confidence reply, the script or human rung), or one a person still owns.
function holding(tg) {
  return tg.decision !== 'deliver' || Boolean(tg.review_id) || tg.rung === 'script' || tg.rung === 'human' ||
    (tg.tags || []).includes('low_confidence') ||
    (tg.policy_hits || []).some((p) => (p.actions || []).includes('script'));
}

// The sources an answer cites: those marked cited when the gateway marks them, else the first
// passage; none under a holding reply.
function citedSources(tg) {
  const list = (tg.citations || []).filter((c) => c && c.source !== 'glossary');
  if (holding(tg)) return [];
  if ((tg.citations || []).some((c) => c && 'cited' in c)) return list.filter((c) => c.cited === true);
  return list.slice(0, 1);
}

function citations(list) {
  const seen = new Set();
  const chips = [];
  for (const c of list) {
    const label = c.heading ? `${c.title || c.source} · ${c.heading}` : (c.title || c.source || '');
    if (!label || seen.has(label)) continue;
    seen.add(label);
    chips.push(h('span', { class: 'chip', title: c.source || '', text: label }));
  }
  return h('div', { class: 'cites', testid: 'chat-citations' },
    h('span', { class: 'muted small', i18n: 'chat.sources' }), chips);
}

// Render a chat.completion with its trustgate annotations.
function showAnswer(data) {
  const tg = data.trustgate || {};
  const content = data.choices?.[0]?.message?.content ?? '';
  learn(tg.disclaimers);
  const msg = addMsg('bot', content);
  if (tg.decision) msg.dataset.decision = tg.decision;
  if ((tg.decision === 'review' || tg.decision === 'human_decision') && tg.review_id) {
    msg.dataset.reviewId = tg.review_id;
    held.set(tg.review_id, msg);
    setState(msg, 'held');
  } else if (tg.decision === 'handoff' && tg.review_id) {  // a person has the conversation now
    msg.dataset.reviewId = tg.review_id;
    if (!held.has(tg.review_id)) held.set(tg.review_id, msg);  // the message that started it keeps it
    setState(msg, 'handed_off');
  }
  const cited = citedSources(tg);
  if (cited.length) msg.append(citations(cited));
  scrollDown();
}

// ---- sending

function setSending(on) {
  sending = on;
  input.disabled = on;
  sendBtn.disabled = on;
  for (const b of document.querySelectorAll('#examples button')) b.disabled = on;
}

async function send(text) {
  text = text.trim();
  if (!text || sending) return;
  setSending(true);
  addMsg('user', text);
  input.value = '';
  const typing = h('div', { class: 'typing', i18n: 'chat.thinking' });
  log.append(typing);
  scrollDown();
  try {
    const res = await fetch('/chat/api/messages', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ text }),
    });
    let data = null;
    try { data = await res.json(); } catch { /* not JSON */ }
    if (!res.ok || !data) throw new Error(data?.error?.message || `HTTP ${res.status}`);
    showAnswer(data);
  } catch (e) {
    addMsg('system', e instanceof TypeError ? t('err.network') : e.message);
  } finally {
    typing.remove();
    setSending(false);
    input.focus();
  }
}

$('#composer').addEventListener('submit', (e) => { e.preventDefault(); send(input.value); });
input.addEventListener('keydown', (e) => {
  // Enter sends, Shift+Enter inserts a newline; never send while an IME is composing
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(input.value); }
});
// ---- the deployment's texts

// The example questions in the interface's language, one click each; the row is hidden when
// there are none.  The tab's title follows the page's.
function showTexts() {
  const examples = pageText('chat_examples') || [];
  $('#examples').replaceChildren(...examples.map((q) =>
    h('button', { type: 'button', class: 'chip ex', text: q, disabled: sending, on: { click: () => send(q) } })));
  $('#examples-row').hidden = !examples.length;
  document.title = $('#brand').textContent.replace(/\s+/g, ' ').trim();
}

// ---- live answers from reviewers and agents

// An answer event: a reviewer's decision or a hand-off replaces the held message's text in
// place; an agent's reply is a new message. people_answers (when the server sends it) names the
// disclaimers a person's answer opens with.
function onAnswer(d) {
  if (!d || !d.review_id) return;
  learn(d.people_answers?.prefix);
  if (d.event === 'agent_reply') {
    if (d.answer) addMsg('agent', d.answer).dataset.replyTo = d.review_id;
    return;
  }
  const msg = held.get(d.review_id);
  if (!msg) return;  // not a message shown on this page
  if (d.answer) setBody(msg, d.answer);
  setState(msg, d.event === 'handed_off' ? 'handed_off' : 'decided');
  if (d.from) msg.dataset.from = d.from;
  scrollDown();
}

initLangToggle($('#lang'), showTexts);
fetch('/chat/api/texts', { credentials: 'same-origin' })
  .then((r) => (r.ok ? r.json() : {}))
  .then((j) => setTexts(j?.texts), () => setTexts({}))
  .finally(showTexts);
openStream('/chat/api/events', { conn, on: { answer: onAnswer } });
input.focus();
