// trustgate console state shared by its views: who is signed in, the view shown, what was
// loaded, the server's clock, the API call and the error banner. console.js owns the router
// and the session and fills in the hooks below; the views only read and call.
import { t } from '/common/i18n.js';
import { $ } from '/common/dom.js';

export const view = $('#view');
export const enc = encodeURIComponent;

export const app = {
  me: null,                      // {user, role, csrf} once signed in
  current: { route: '', id: '' },
  // what a person has typed or chosen, kept across re-renders
  ui: { checked: new Set(), mode: '', editText: null, rejectText: '', replies: {}, outcome: null, queueState: 'open', look: '1d', unfreezeWhy: '', openHandoffs: new Set(), handoffPage: 0 },
  store: {},                     // list | task | handoffs | stats | gov | audit
  // tags that make a hand-off urgent: the pipeline's own and the config's review.risk_tags, as
  // GET /console/api/labels gives them (console.js sets it when a session starts)
  riskTags: new Set(),
  // hooks console.js sets: reload the view shown (force: render even if nothing changed), and
  // end the session (a 401)
  refresh: async () => {},
  signedOut: () => {},
};

const seen = {};                 // JSON of each store entry, to skip needless re-renders
let clockOffset = 0;             // server clock minus local clock, ms
let clockSet = false;

// The server's clock now, in ms.
export const serverNow = () => Date.now() + clockOffset;

// Set the server's clock from a list's now_ms (a number; anything else is ignored).
export function setClock(nowMs) {
  if (typeof nowMs === 'number') { clockOffset = nowMs - Date.now(); clockSet = true; }
}

// Store a value; true when it differs from what is shown.
export function swap(key, val) {
  const j = JSON.stringify(val);
  if (j === seen[key]) return false;
  app.store[key] = val;
  seen[key] = j;
  return true;
}

// Forget what key showed, so its next swap counts as a change.
export function forget(key) { delete seen[key]; }

// Forget everything loaded (signing out).
export function clearStore() {
  for (const k of Object.keys(app.store)) { delete app.store[k]; delete seen[k]; }
}

// Call the API: the JSON reply, or an Error with status and code.
export async function api(method, path, body) {
  const opt = { method, credentials: 'same-origin', headers: {} };
  if (body !== undefined) {
    opt.headers['Content-Type'] = 'application/json';
    opt.body = JSON.stringify(body);
  }
  if (method !== 'GET' && app.me?.csrf) opt.headers['X-CSRF-Token'] = app.me.csrf;
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

const errBox = $('#error');
export function showError(msg) { errBox.textContent = msg; errBox.hidden = false; }
export function clearError() { errBox.textContent = ''; errBox.hidden = true; }
errBox.addEventListener('click', clearError);

// Show a failed call: a 401 while signed in ends the session first.
export function handleError(e) {
  if (e.status === 401 && app.me) { app.signedOut(); showError(e.message); return; }
  showError(e instanceof TypeError ? t('err.network') : e.message);
}

// Re-render without losing the caret in the textarea being typed into.
export function keepFocus(render) {
  const a = document.activeElement;
  const keep = a && a.tagName === 'TEXTAREA' && view.contains(a)
    ? { tid: a.dataset.testid, rid: a.closest('[data-review-id]')?.dataset.reviewId, s: a.selectionStart, e: a.selectionEnd } : null;
  render();
  if (!keep) return;
  const scope = keep.rid ? view.querySelector(`[data-review-id="${CSS.escape(keep.rid)}"]`) : view;
  const el = scope?.querySelector(`textarea[data-testid="${keep.tid}"]`);
  if (el) { el.focus(); el.setSelectionRange(keep.s, keep.e); }
}
