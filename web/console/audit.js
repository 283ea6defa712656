// trustgate console: the audit log's signed tree head and the key to check it with.
import { t } from '/common/i18n.js';
import { h } from '/common/dom.js';
import { app, swap, view } from '/console/app.js';

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

export async function load() {
  const [checkpoint, key] = await Promise.all([text('/v1/audit/checkpoint'), text('/v1/audit/key')]);
  return swap('audit', { checkpoint, key: key.trim() });
}

export function render() {
  const a = app.store.audit;
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
