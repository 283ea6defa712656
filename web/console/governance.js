// trustgate console: governance for supervisors: the release freeze, the fairness gate and the
// running experiments.
import { t, tl } from '/common/i18n.js';
import { h } from '/common/dom.js';
import { bandChart, chartCard } from '/common/chart.js';
import { fmtP, fmtTime, num, pct } from '/common/format.js';
import { app, api, clearError, enc, handleError, showError, swap, view } from '/console/app.js';

const METRICS = ['resolved', 'far', 'handed_off', 'reviewed', 'rated_good', 'bad_rating', 'latency_ms', 'cost'];

export async function load() {
  const [fair, rel, exps] = await Promise.all([api('GET', '/v1/fairness'), api('GET', '/v1/releases'), api('GET', '/v1/experiments')]);
  const reports = await Promise.all((exps.experiments || []).map((e) => api('GET', `/v1/experiments/${enc(e.name)}?${/^\d+$/.test(app.ui.look) ? `turns=${app.ui.look}` : `look=${app.ui.look}`}`).catch(() => null)));
  return swap('gov', { fair, rel, exps: exps.experiments || [], reports, look: app.ui.look });
}

function freezeBlock(state) {
  if (!state?.frozen) {
    return h('div', { class: 'block', testid: 'release-state' }, h('span', { class: 'badge ok', i18n: 'gov.open' }),
      state?.by ? h('span', { class: 'muted', text: ` ${t('gov.lastChange', { by: state.by, t: fmtTime(state.at) })}` }) : null);
  }
  // the reason being written survives the view's periodic refresh
  const why = h('textarea', { rows: 2, testid: 'unfreeze-why', placeholder: t('gov.unfreezeWhy'), value: app.ui.unfreezeWhy,
    on: { input: (e) => { app.ui.unfreezeWhy = e.target.value; } } });
  const btn = h('button', { type: 'button', class: 'primary', testid: 'unfreeze', i18n: 'gov.unfreeze' });
  btn.addEventListener('click', async () => {
    if (why.value.trim().length < 10) return showError(t('gov.whyShort'));
    btn.disabled = true;
    try { await api('POST', '/v1/releases/unfreeze', { why: why.value.trim() }); app.ui.unfreezeWhy = ''; clearError(); await app.refresh(true); } catch (e) { handleError(e); } finally { btn.disabled = false; }
  });
  return h('div', { class: 'block frozen', testid: 'release-state' },
    h('div', { class: 'error', testid: 'frozen-banner', text: t('gov.frozen', { by: state.by || '—', why: state.why || '' }) }),
    app.me.role === 'supervisor' ? h('div', { class: 'sub' }, why, btn) : null);
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

// The cumulative difference look by look inside its confidence sequence (shares of 1, shown as
// points); a look where the difference is significant (p < 0.01) is green.
function sequenceChart(days) {
  const pts = (p) => (p * 100).toFixed(2);
  return bandChart((days || []).map((p) => ({
    label: p.day, value: p.diff, low: p.low, high: p.high, strong: p.p_always_valid < 0.01,
    tip: `look ${p.day}: ${pts(p.diff)} pts [${pts(p.low)}, ${pts(p.high)}], p ${fmtP(p.p_always_valid)}`,
  })), { testid: 'sequence-chart', min: -1, max: 1, yFmt: (v) => (v * 100).toFixed(1) });
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

export function render() {
  const g = app.store.gov;
  if (!g) return;
  view.replaceChildren(h('div', { class: 'sup', testid: 'governance-view' },
    h('div', { class: 'toolbar' }, h('h2', { i18n: 'gov.title' }),
      h('label', { class: 'muted' }, t('gov.look'), ' ', h('select', { testid: 'look', on: { change: (e) => { app.ui.look = e.target.value; app.refresh(true); } } },
        ['100', '1h', '1d'].map((v) => h('option', { value: v, selected: app.ui.look === v, text: t(`gov.look.${v}`) }))))),
    freezeBlock(g.rel?.state),
    fairnessBlock(g.fair),
    g.exps.length ? g.exps.map((e, i) => experimentBlock(e, g.reports[i])) : h('p', { class: 'muted', i18n: 'gov.noExperiments' }),
    h('section', { class: 'block', testid: 'releases' }, h('h3', { i18n: 'gov.releases' }),
      g.rel?.releases?.length ? null : h('p', { class: 'muted', i18n: 'gov.noReleases' }),
      h('table', { class: 'queue' }, h('tbody', {}, (g.rel?.releases || []).map((r) => h('tr', {},
        h('td', { text: `${r.name} v${r.version}` }), h('td', { text: r.state }), h('td', { class: 'mono', text: (r.hash || '').slice(0, 16) }))))))));
}
