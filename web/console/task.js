// trustgate console: one review task, its context and the decision panel (claim, attest,
// approve, edit or write the answer, reject).
import { t, tl } from '/common/i18n.js';
import { h } from '/common/dom.js';
import { fmtTime } from '/common/format.js';
import { app, api, clearError, enc, handleError, keepFocus, showError, swap, view } from '/console/app.js';
import {
  addOnSend, conversationBlock, draftBlock, eventsBlock, evidenceBlock, hitsBlock, isPromise, kindBadge, prioBadge,
  questionBlock, queueBadge, recordBlocks, slaEl, stateBadge, tagList, tick, tokensBlock, whyLine,
} from '/console/blocks.js';

export async function load() {
  return swap('task', await api('GET', `/v1/reviews/${enc(app.current.id)}`));
}

export function reset() {
  app.ui.checked = new Set();
  app.ui.mode = '';
  app.ui.editText = null;
  app.ui.rejectText = '';
}

export function render() {
  const x = app.store.task;
  if (!x || x.id !== app.current.id) return;
  const open = (x.state === 'pending' || x.state === 'claimed') && app.ui.outcome?.id !== x.id;
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
  const action = x.decision?.action || (app.ui.outcome?.id === x.id ? app.ui.outcome.action : '');
  const text = action ? t('outcome.decided', { a: action, l: tl('action', action) })
    : t('outcome.state', { s: x.state, l: tl('state', x.state) });
  return h('section', { class: 'block decide' },
    h('div', { class: 'outcome-msg', testid: 'task-outcome', data: { action }, text }),
    h('a', { href: '#/queue', i18n: 'task.back' }));
}

function decisionPanel(x) {
  const atts = x.required_attestations || [];
  const allTicked = atts.every((a) => app.ui.checked.has(a));
  const hasDraft = Boolean(x.draft);
  const mine = x.state === 'claimed' && x.claimed_by === app.me.user;
  const claimNote = x.state === 'pending' ? t('task.unclaimed') : mine ? t('task.claimedMe')
    : `${t('task.claimedBy', { u: x.claimed_by || '?' })}${x.claim_expires_ms ? ` (→ ${fmtTime(x.claim_expires_ms)})` : ''}`;

  // Without a draft (a follow-up, a human decision) writing the answer is the way to decide:
  // the edit box is open from the start, and approve stays disabled with the reason beside it.
  const mode = app.ui.mode || (hasDraft ? '' : 'edit');

  // enable/disable decision buttons as boxes are ticked and text is typed
  const btn = {};
  const sync = () => {
    const ok = atts.every((a) => app.ui.checked.has(a));
    btn.approve.disabled = !ok || !hasDraft;
    if (btn.editSubmit) btn.editSubmit.disabled = !ok;
    btn.reject.disabled = !ok;
    if (btn.rejectSubmit) btn.rejectSubmit.disabled = !ok || !app.ui.rejectText.trim();
    hint.hidden = ok;
  };
  const toggle = (m) => {
    app.ui.mode = mode === m ? (hasDraft ? '' : 'edit') : m;
    if (app.ui.mode === 'edit' && app.ui.editText == null) app.ui.editText = x.draft || '';
    keepFocus(render);
    if (app.ui.mode === 'edit') view.querySelector('textarea[data-testid="edit-text"]')?.focus();
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
      h('textarea', { testid: 'edit-text', rows: 6, value: app.ui.editText ?? (x.draft || ''),
        placeholder: hasDraft ? null : t(isPromise(x) ? 'task.answerPromisePh' : 'task.answerPh'),
        'aria-label': t(hasDraft ? 'task.edit' : 'task.write'),
        on: { input: (e) => { app.ui.editText = e.target.value; } } }),
      btn.editSubmit);
  } else if (mode === 'reject') {
    btn.rejectSubmit = h('button', { class: 'danger', testid: 'reject-submit', i18n: 'task.rejectSubmit', on: { click: () => decide(x, 'reject') } });
    extra = h('div', { class: 'sub' },
      h('textarea', { testid: 'reject-reason', rows: 3, placeholder: t('task.rejectReason'), value: app.ui.rejectText,
        on: { input: (e) => { app.ui.rejectText = e.target.value; sync(); } } }),
      btn.rejectSubmit);
  }

  const panel = h('section', { class: 'block decide' }, h('h3', { i18n: 'task.decide' }),
    h('div', { class: 'claimrow' }, h('span', { class: 'muted small', text: claimNote }),
      h('button', { testid: 'claim', i18n: 'task.claim', disabled: mine, on: { click: () => claim(x) } })),
    atts.length ? h('fieldset', { class: 'atts' }, h('legend', { i18n: 'task.attest' }),
      atts.map((a) => h('label', {},
        h('input', { type: 'checkbox', testid: 'attestation', value: a, checked: app.ui.checked.has(a),
          on: { change: (e) => { if (e.target.checked) app.ui.checked.add(a); else app.ui.checked.delete(a); sync(); } } }),
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
    keepFocus(render);
  } catch (e) { handleError(e); }
}

async function decide(x, action) {
  const body = { action, attestations: (x.required_attestations || []).filter((a) => app.ui.checked.has(a)) };
  if (action === 'edit') {
    body.text = (app.ui.editText || '').trim();
    if (!body.text) return showError(t('err.emptyAnswer'));
  }
  if (action === 'reject') {
    body.reason = app.ui.rejectText.trim();
    if (!body.reason) return showError(t('err.emptyReason'));
  }
  for (const b of view.querySelectorAll('.decide button')) b.disabled = true;  // no double submit
  try {
    const task = await api('POST', `/v1/reviews/${enc(x.id)}/decision`, body);
    clearError();
    app.ui.outcome = { id: x.id, action };
    if (task?.id) swap('task', task);
    render();
    setTimeout(() => { if (app.current.route === 'task' && app.current.id === x.id) location.hash = '#/queue'; }, 2500);
  } catch (e) {
    handleError(e);
    keepFocus(render);
  }
}
