// trustgate reviewer console: wires the views to the router, the session and the live review
// events. Each view is a module with load() (fetch what it shows; true when it changed) and
// render() (draw it into #view):
//   queue.js       the review queue            task.js        one task and its decision
//   handoffs.js    hand-offs for agents        supervisor.js  numbers and charts
//   governance.js  freeze, fairness, experiments   audit.js   the signed tree head
// blocks.js holds the task context the task view and the hand-off cards share, app.js the
// state, API call and error banner every view uses, login.js the login form.
import { t, tl, setLabels, setTexts, applyI18n, initLangToggle } from '/common/i18n.js';
import { $, h } from '/common/dom.js';
import { openStream } from '/common/events.js';
import { app, api, clearError, clearStore, handleError, keepFocus, showError, view } from '/console/app.js';
import { tick } from '/console/blocks.js';
import { hideLoginForm, initLogin, showLoginForm } from '/console/login.js';
import * as queue from '/console/queue.js';
import * as task from '/console/task.js';
import * as handoffs from '/console/handoffs.js';
import * as supervisor from '/console/supervisor.js';
import * as governance from '/console/governance.js';
import * as audit from '/console/audit.js';

const routes = { queue, task, handoffs, supervisor, governance, audit };

// which views each role may open (the server checks every call too)
const ALLOWED = {
  reviewer: ['queue', 'task', 'handoffs', 'audit'],
  agent: ['queue', 'task', 'handoffs', 'audit'],
  supervisor: ['queue', 'task', 'handoffs', 'supervisor', 'governance', 'audit'],
  auditor: ['audit'],
};
const NAV = [['queue', 'nav-queue', 'nav.queue'], ['handoffs', 'nav-handoffs', 'nav.handoffs'],
  ['supervisor', 'nav-supervisor', 'nav.supervisor'], ['governance', 'nav-governance', 'nav.governance'],
  ['audit', 'nav-audit', 'nav.audit']];

let seq = 0;                 // newest refresh wins
let unrendered = false;
let stream = null, debounce = 0;

// ---- routing

function parseHash() {
  const m = location.hash.match(/^#\/(queue|handoffs|supervisor|governance|audit|task)(?:\/([^/]+))?$/);
  if (!m || (m[1] === 'task' && !m[2])) return null;
  return { route: m[1], id: m[2] ? decodeURIComponent(m[2]) : '' };
}
const defaultRoute = () => (app.me?.role === 'agent' ? 'handoffs' : app.me?.role === 'auditor' ? 'audit' : 'queue');

async function navigate() {
  if (!app.me) return;
  const next = parseHash();
  if (!next || !(ALLOWED[app.me.role] || []).includes(next.route)) {
    history.replaceState(null, '', `#/${defaultRoute()}`);
    return navigate();
  }
  const cur = app.current;
  if (next.route !== cur.route || next.id !== cur.id) {
    if (cur.route === 'task' || next.route === 'task') task.reset();
    app.current = next;
    clearError();
    view.replaceChildren(h('p', { class: 'muted', i18n: 'loading' }));
  }
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.dataset.route === (app.current.route === 'task' ? 'queue' : app.current.route));
  }
  await refresh(true);
}

// A refresh overtaken by a newer one does not render; what it loaded, or the render it was asked
// for, is left to the newest (unrendered), which may itself load nothing new: otherwise a task
// opened just as a live event arrives stays on "loading" until the next change.
async function refresh(force) {
  const r = routes[app.current.route];
  if (!r || !app.me) return;
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

// ---- session and live events

// Review events: refetch what is shown (at most every 200 ms). When the browser gives up on the
// stream (e.g. the session expired) it is reopened only while the session still holds.
function connectEvents() {
  if (stream) stream.close();
  const conn = $('#conn');
  conn.hidden = false;
  stream = openStream('/v1/reviews/events', {
    conn,
    on: { review: () => { clearTimeout(debounce); debounce = setTimeout(() => refresh(false), 200); } },
    beforeRetry: async () => {
      if (!app.me) return false;
      try { await api('GET', '/console/api/me'); return true; } catch (e) { handleError(e); return false; }
    },
  });
}

const showWho = () => { $('#who').textContent = `${app.me.user} · ${tl('role', app.me.role)}`; };

function startSession(who) {
  app.me = who;
  hideLoginForm();
  $('#nav').hidden = false;
  $('#logout').hidden = false;
  showWho();
  const items = NAV.filter(([r]) => (ALLOWED[who.role] || []).includes(r));
  $('#nav').replaceChildren(...items.map(([r, tid, key]) => h('a', { href: `#/${r}`, testid: tid, i18n: key, data: { route: r } })));
  if (who.role !== 'auditor') connectEvents();  // auditors read the log, not the queue
  // the deployment's words for tags, events, rules and queues (without them codes are shown),
  // and the tags that make a hand-off urgent
  api('GET', '/console/api/labels').then((r) => {
    setLabels(r?.labels);
    app.riskTags = new Set(Array.isArray(r?.risk_tags) ? r.risk_tags : []);
  }, () => { setLabels({}); app.riskTags = new Set(); })
    .finally(() => { if (app.me === who) navigate(); });
}

function endSession() {
  app.me = null;
  setLabels({});
  app.riskTags = new Set();
  if (stream) { stream.close(); stream = null; }
  app.current = { route: '', id: '' };
  clearStore();
  view.replaceChildren();
  $('#nav').hidden = true;
  $('#nav').replaceChildren();
  $('#logout').hidden = true;
  $('#conn').hidden = true;
  $('#who').textContent = '';
  showLoginForm();
}

app.refresh = refresh;
app.signedOut = endSession;
initLogin({ signedIn: startSession, signedOut: endSession });
window.addEventListener('hashchange', navigate);
setInterval(tick, 1000);

// Supervisor numbers every 10 s; other views poll only while the event stream is down.
setInterval(() => {
  const r = app.current.route;
  if (app.me && (r === 'supervisor' || r === 'governance' || $('#conn').dataset.state !== 'live')) refresh(false);
}, 10000);

initLangToggle($('#lang'), () => {
  if (!app.me) return;
  showWho();
  keepFocus(routes[app.current.route]?.render || (() => {}));
  applyI18n();
});

// the deployment's texts on the login form (web.texts: a hint, or nothing), readable by anyone
api('GET', '/console/api/texts').then((r) => setTexts(r?.texts), () => setTexts({}));

api('GET', '/console/api/me').then(startSession, (e) => {
  endSession();
  if (e.status !== 401) showError(e instanceof TypeError ? t('err.network') : e.message);
});
