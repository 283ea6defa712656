// trustgate safe Markdown: knowledge-base passages as elements (headings, lists, tables, bold,
// inline code, paragraphs). Every character of the source ends up in a text node made by the DOM
// (h() never parses HTML), so nothing a passage contains can become markup, a link or a script.
import { h } from '/common/dom.js';

// **bold**, `code`, and [text](url) shown as its text only (no link to follow). Underscores are
// left alone: in identifiers and URLs they are no emphasis.
const INLINE = /\*\*(?=\S)(.+?)(?<=\S)\*\*|`([^`\n]+)`|\[([^\]\n]+)\]\([^)\s]*\)/g;

// Inline spans of one line or paragraph: strings and elements, in order.
function inline(text) {
  const out = [];
  let pos = 0;
  for (const m of text.matchAll(INLINE)) {
    if (m.index > pos) out.push(text.slice(pos, m.index));
    if (m[1] != null) out.push(h('strong', {}, inline(m[1])));
    else if (m[2] != null) out.push(h('code', { text: m[2] }));
    else out.push(m[3]);
    pos = m.index + m[0].length;
  }
  if (pos < text.length) out.push(text.slice(pos));
  return out;
}

const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$/;
const ITEM = /^(\s*)([-*+]|\d{1,3}[.)])\s+(.*)$/;
const ROW = /^\s*\|(.*)\|\s*$/;
const RULE = /^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$/;

const cells = (row) => row.match(ROW)[1].split('|').map((c) => c.trim());

// The elements of a Markdown text (a string; anything else is shown as its text). Headings
// become h4 (# and ##) or h5 (### and deeper), since a passage sits inside a page's section.
export function renderMarkdown(src) {
  const lines = String(src ?? '').replace(/\r\n?/g, '\n').split('\n');
  const out = [];
  let para = [], list = null, table = null;
  const flush = () => {
    if (para.length) {
      out.push(h('p', {}, para.flatMap((l, i) => (i ? [h('br'), ...inline(l)] : inline(l)))));
      para = [];
    }
    if (list) { out.push(list.el); list = null; }
    if (table) { out.push(h('table', { class: 'md-table' }, h('tbody', {}, table))); table = null; }
  };
  for (const line of lines) {
    let m;
    if (!line.trim()) { flush(); continue; }
    if ((m = line.match(HEADING))) {
      flush();
      out.push(h(m[1].length <= 2 ? 'h4' : 'h5', { class: 'md-h' }, inline(m[2])));
    } else if (ROW.test(line)) {
      if (!table) { flush(); table = []; }
      if (!RULE.test(line)) {
        const tag = table.length ? 'td' : 'th';
        table.push(h('tr', {}, cells(line).map((c) => h(tag, {}, inline(c)))));
      }
    } else if ((m = line.match(ITEM))) {
      const ordered = /\d/.test(m[2]);
      if (para.length || table || (list && list.ordered !== ordered)) flush();
      if (!list) list = { ordered, el: h(ordered ? 'ol' : 'ul', { class: 'md-list' }) };
      list.el.append(h('li', {}, inline(m[3])));
    } else if (list && /^\s+\S/.test(line)) {
      list.el.lastChild.append(' ', ...inline(line.trim()));  // an item's continued line
    } else {
      if (list || table) flush();
      para.push(line.trim());
    }
  }
  flush();
  return out;
}
