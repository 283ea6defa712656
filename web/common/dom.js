// trustgate DOM helpers shared by the chat page and the console: $ to find an element, h() and
// svg() to build them. Nothing here parses HTML: text always becomes a text node.
import { t } from '/common/i18n.js';

export const $ = (sel, root = document) => root.querySelector(sel);

// Build an element without innerHTML. props: class, text, i18n, testid, data{}, on{}, value,
// boolean/number properties (disabled, checked, rows...), other string attributes.
export function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'i18n') { el.dataset.i18n = v; el.textContent = t(v); }
    else if (k === 'testid') el.dataset.testid = v;
    else if (k === 'data') { for (const [dk, dv] of Object.entries(v)) if (dv != null) el.dataset[dk] = String(dv); }
    else if (k === 'on') { for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn); }
    else if (k === 'value') el.value = v;
    else if (typeof v !== 'string' && k in el) el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of kids.flat(Infinity)) if (c != null && c !== false) el.append(c);
  return el;
}

// Build an SVG element: every attribute set as written, children appended (strings as text).
const NS = 'http://www.w3.org/2000/svg';
export function svg(tag, attrs, ...kids) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of kids) if (c != null) el.append(c);
  return el;
}
