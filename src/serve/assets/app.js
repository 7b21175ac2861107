// tdscale serve: the pages. Every page reads the JSON API under /api/ and builds its DOM with
// createElement and textContent only: corpus text (trajectories, tool names, ids) is untrusted
// and never becomes markup. Charts come from the server as SVG text and are copied element by
// element through a whitelist (no scripts, no event attributes, no links).
'use strict';

const SVG_NS = 'http://www.w3.org/2000/svg';

// ---- DOM helpers ----

/** An element with attributes and children (strings become text nodes). */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  append(e, children);
  return e;
}

function setAttrs(e, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (/^on/i.test(k) || k === 'style' || k === 'srcdoc') throw new Error('refused attribute ' + k);
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(e, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svgEl(tag, attrs, ...children) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined) e.setAttribute(k, String(v));
  }
  append(e, children);
  return e;
}

/** A link inside this site: path plus query parameters. */
function href(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== null && v !== undefined && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

function a(path, params, ...children) {
  return el('a', { href: href(path, params) }, ...children);
}

const trajLink = (id, text) => a('/trajectory', { id }, text === undefined ? id : text);

function fmt(x, digits = 3) {
  if (x === null || x === undefined || x === '') return '–';
  const n = Number(x);
  if (!Number.isFinite(n)) return String(x);
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  return n.toFixed(digits);
}

function bytes(n) {
  if (n < 1024) return `${n} B`;
  const u = ['KiB', 'MiB', 'GiB', 'TiB'];
  let i = -1;
  do { n /= 1024; i++; } while (n >= 1024 && i < u.length - 1);
  return `${n.toFixed(1)} ${u[i]}`;
}

function errorBox(err) {
  return el('div', { class: 'error', role: 'alert' }, err && err.message ? err.message : String(err));
}

function table(headers, rows, numeric = []) {
  const head = el('tr', {}, headers.map((h, i) => el('th', { class: numeric.includes(i) ? 'num' : null }, h)));
  const body = rows.map((r) => el('tr', {}, r.map((c, i) => {
    if (c instanceof Node && c.tagName === 'TD') return c;
    return el('td', { class: numeric.includes(i) ? 'num' : null }, c);
  })));
  return el('div', { class: 'scroll' }, el('table', { class: 'grid' }, el('thead', {}, head), el('tbody', {}, body)));
}

// ---- The API ----

async function api(path, options) {
  const r = await fetch(path, options);
  let body = null;
  try { body = await r.json(); } catch (_) { /* not JSON */ }
  if (!r.ok) {
    throw new Error(body && body.error ? body.error : `${r.status} ${r.statusText}`);
  }
  return body;
}

// ---- Charts: SVG text from the server, copied through a whitelist ----

const SVG_ELEMENTS = new Set(['svg', 'g', 'rect', 'line', 'text', 'circle', 'path', 'title', 'polyline', 'tspan']);
const SVG_ATTRIBUTES = new Set(['viewBox', 'width', 'height', 'x', 'y', 'x1', 'y1', 'x2', 'y2', 'cx', 'cy', 'r', 'd',
  'fill', 'stroke', 'stroke-width', 'stroke-opacity', 'font-size', 'text-anchor', 'transform', 'role', 'aria-label',
  'class', 'data-filter', 'points', 'opacity']);

function copySvg(node) {
  if (node.nodeType === Node.TEXT_NODE) return document.createTextNode(node.nodeValue);
  if (node.nodeType !== Node.ELEMENT_NODE || node.namespaceURI !== SVG_NS) return null;
  const name = node.localName;
  if (!SVG_ELEMENTS.has(name)) return null;
  const out = document.createElementNS(SVG_NS, name);
  for (const at of Array.from(node.attributes)) {
    if (SVG_ATTRIBUTES.has(at.name)) out.setAttribute(at.name, at.value);
  }
  for (const c of Array.from(node.childNodes)) {
    const copy = copySvg(c);
    if (copy) out.append(copy);
  }
  return out;
}

function chart(svgText, caption) {
  const doc = new DOMParser().parseFromString(svgText || '', 'image/svg+xml');
  const svg = copySvg(doc.documentElement);
  return el('figure', {}, svg || el('div', { class: 'empty' }, 'no chart'), caption ? el('figcaption', {}, caption) : null);
}

// Hover shows the mark's title; a click lists the trajectories the mark counts.
function wireCharts() {
  const tip = document.getElementById('tooltip');
  document.addEventListener('mousemove', (ev) => {
    const m = ev.target.closest && ev.target.closest('svg .mark, svg circle, svg rect');
    const t = m && m.querySelector('title');
    if (!t) { tip.hidden = true; return; }
    tip.textContent = t.textContent;
    tip.hidden = false;
    tip.style.left = `${ev.clientX + 12}px`;
    tip.style.top = `${ev.clientY + 12}px`;
  });
  document.addEventListener('click', (ev) => {
    const m = ev.target.closest && ev.target.closest('svg .mark[data-filter]');
    if (!m) return;
    const params = new URLSearchParams(m.getAttribute('data-filter'));
    location.assign('/trajectories?' + params.toString());
  });
}

// ---- Overview ----

async function overview(main) {
  const params = new URLSearchParams(location.search);
  const by = params.get('by') || 'round';
  append(main, [el('h1', {}, 'Overview')]);
  const tablesBox = el('section', { id: 'tables' }, el('p', { class: 'loading' }, 'Listing tables…'));
  const reportBox = el('section', {}, el('p', { class: 'loading' }, 'Computing the diversity report…'));
  append(main, [tablesBox, reportBox]);

  const tablesDone = api('/api/overview').then((o) => {
    const refresh = el('button', { type: 'button', class: 'secondary', id: 'refresh', title: 'list the tables again now (the server also does every --refresh interval)' }, 'Look for new data');
    refresh.addEventListener('click', async () => {
      refresh.disabled = true;
      try { await api('/api/refresh', { method: 'POST' }); location.reload(); } catch (e) { tablesBox.append(errorBox(e)); refresh.disabled = false; }
    });
    tablesBox.replaceChildren(
      el('h2', {}, 'Tables ', refresh),
      table(['table', 'files', 'size', 'rows'], o.tables.map((t) => [
        t.name === 'trajectories' ? a('/trajectories', {}, t.name) : a('/sql', { q: `SELECT * FROM "${t.name}" LIMIT 100` }, t.name),
        fmt(t.files), bytes(t.bytes), fmt(t.rows)]), [1, 2, 3]),
      el('p', { class: 'muted' }, 'Views: ', o.views.map((v) => el('code', { class: 'chip' }, v)), ' ',
        o.index.materialized ? `— trajectory index in memory: ${fmt(o.index.rows)} rows, built in ${fmt(o.index.build_ms / 1000, 2)} s.`
          : '— the trajectory index is being built; pages read the files meanwhile.'));
  }).catch((e) => tablesBox.replaceChildren(errorBox(e)));

  try {
    const r = await api(href('/api/report', { by }));
    const rep = r.report;
    const key = r.filter_key;
    const tabs = el('div', { class: 'tabs' }, ['round', 'domain', 'source', 'cluster'].map((b) =>
      el('a', { href: href('/', { by: b }), class: b === by ? 'active' : null }, `by ${b}`)));
    const rows = rep.groups.map((g) => [
      a('/trajectories', { [key]: g.group }, g.group),
      fmt(g.trajectories), fmt(g.de_bits), fmt(g.de_normalized), fmt(g.rme_bits), fmt(g.rme_normalized), fmt(g.modes),
      fmt(g.cac_mean, 2), fmt(g.cac_p50, 2), fmt(g.cac_p90, 2), fmt(g.cac_p99, 2),
      `${fmt(g.tail_modes)} (${fmt(100 * g.tail_share, 1)}%)`,
      el('td', {}, g.top_modes.map((m) => a('/trajectories', { [key]: g.group, mode: m.mode }, el('span', { class: 'chip' }, m.mode || "''", ' ', el('span', { class: 'muted' }, fmt(m.trajectories)))))),
    ]);
    reportBox.replaceChildren(
      el('h2', {}, 'Diversity'),
      tabs,
      el('p', { class: 'muted' }, `${fmt(rep.trajectories)} trajectories. DE and RME in bits; /max divides by log2 of the distinct values; the tail is the modes holding the last 20% of trajectories. Click a bar, a point or a mode to list its trajectories.`),
      el('div', { class: 'cards' },
        chart(r.charts.groups, `Trajectories by ${key} (hover for DE, RME, CAC)`),
        chart(r.charts.cac, 'Cumulative Action Complexity: click a bar for that range'),
        chart(r.charts.modes, 'Reasoning modes by rank (log-log): click a point for that mode'),
        chart(r.charts.rounds, 'Entropy by evolution round: click a point for that round')),
      table([key, 'trajectories', 'DE', 'DE/max', 'RME', 'RME/max', 'modes', 'CAC mean', 'CAC p50', 'CAC p90', 'CAC p99', 'tail modes', 'top modes'],
        rows, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]));
  } catch (e) {
    reportBox.replaceChildren(el('h2', {}, 'Diversity'), errorBox(e));
  }
  await tablesDone;
}

// ---- Trajectory browser ----

const FILTERS = ['domain', 'mode', 'cluster', 'round', 'source', 'reward_min', 'reward_max', 'cac_min', 'cac_max', 'q', 'where'];
const SORTS = ['traj_id', 'round', 'source', 'domain', 'cluster_id', 'mode', 'cac', 'num_turns', 'num_tool_calls', 'num_tokens', 'reward'];

function facetSelect(name, label, values, current) {
  const s = el('select', { name }, el('option', { value: '' }, 'any'));
  let seen = false;
  for (const f of values || []) {
    const o = el('option', { value: f.v }, `${f.v} (${fmt(f.n)})`);
    if (f.v === current) { o.selected = true; seen = true; }
    s.append(o);
  }
  if (current && !seen) {
    const o = el('option', { value: current }, current);
    o.selected = true;
    s.append(o);
  }
  return el('label', {}, label, s);
}

async function browser(main) {
  const params = new URLSearchParams(location.search);
  const cur = (k) => params.get(k) || '';
  append(main, [el('h1', {}, 'Trajectories')]);
  const form = el('form', { class: 'filters', id: 'filters' });
  const infoBox = el('div', { class: 'info' });
  const listBox = el('section', {}, el('p', { class: 'loading' }, 'Loading…'));
  append(main, [form, infoBox, listBox]);

  const input = (name, label, attrs) => el('label', { class: attrs && attrs.wide ? 'wide' : null }, label,
    el('input', { name, value: cur(name), type: 'text', placeholder: attrs && attrs.placeholder, 'aria-label': label }));
  const build = (facets) => {
    form.replaceChildren(
      facetSelect('domain', 'domain', facets.domain, cur('domain')),
      facetSelect('mode', 'reasoning mode', facets.mode, cur('mode')),
      facetSelect('cluster', 'cluster', facets.cluster, cur('cluster')),
      facetSelect('round', 'round', facets.round, cur('round')),
      facetSelect('source', 'source', facets.source, cur('source')),
      input('reward_min', 'reward ≥'), input('reward_max', 'reward ≤'),
      input('cac_min', 'CAC ≥'), input('cac_max', 'CAC ≤'),
      input('q', 'free text (ids, prompts, messages, calls)', { wide: true, placeholder: 'e.g. refund' }),
      input('where', 'SQL WHERE', { wide: true, placeholder: "e.g. num_tool_calls > 5 AND domain <> 'airline'" }),
      el('label', {}, 'sort by', (() => {
        const s = el('select', { name: 'sort' });
        for (const o of SORTS) { const op = el('option', { value: o }, o); if (o === (cur('sort') || 'traj_id')) op.selected = true; s.append(op); }
        return s;
      })()),
      el('label', {}, 'order', (() => {
        const s = el('select', { name: 'desc' }, el('option', { value: '' }, 'ascending'), el('option', { value: '1' }, 'descending'));
        if (cur('desc')) s.value = '1';
        return s;
      })()),
      el('div', { class: 'buttons' }, el('button', { type: 'submit' }, 'Filter'), a('/trajectories', {}, 'clear all')));
  };
  build({});
  api('/api/facets').then(build).catch(() => { /* the list shows the error */ });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = {};
    for (const [k, v] of new FormData(form).entries()) if (String(v).trim() !== '') q[k] = v;
    location.assign(href('/trajectories', q));
  });

  const active = FILTERS.filter((k) => cur(k));
  const chips = active.map((k) => {
    const rest = {};
    for (const [kk, vv] of params.entries()) if (kk !== k && kk !== 'page') rest[kk] = vv;
    return el('a', { href: href('/trajectories', rest), class: 'chip removable', title: 'remove this filter' }, `${k} = ${cur(k)}`);
  });

  try {
    const page = await api('/api/trajectories?' + params.toString());
    const first = (page.page - 1) * page.per_page;
    const countSpan = el('span', { id: 'count' }, 'counting…');
    infoBox.replaceChildren(
      chips.length ? el('div', {}, 'Filters: ', chips) : null,
      el('div', {}, page.rows.length ? `rows ${fmt(first + 1)}–${fmt(first + page.rows.length)} of ` : 'no rows of ', countSpan,
        ` · first page in ${fmt(page.elapsed_ms)} ms · `, a('/sql', { q: page.sql }, 'this query in the SQL console')));
    api('/api/trajectories/count?' + params.toString())
      .then((c) => { countSpan.textContent = fmt(c.count); })
      .catch((e) => { countSpan.textContent = `? (${e.message})`; });
    const withParam = (k, v) => { const q = Object.fromEntries(params.entries()); delete q.page; q[k] = v; return href('/trajectories', q); };
    const rows = page.rows.map((r) => [
      el('td', { class: 'mono' }, trajLink(r.traj_id), r.parent_id ? el('span', { class: 'sub' }, 'from ', trajLink(r.parent_id)) : null),
      fmt(r.round), r.source, r.domain === null ? '–' : el('a', { href: withParam('domain', r.domain) }, r.domain),
      r.cluster_id === null ? '–' : el('a', { href: withParam('cluster', r.cluster_id) }, r.cluster_id),
      r.mode === null ? '–' : el('a', { href: withParam('mode', r.mode), class: 'chip' }, r.mode || "''"),
      fmt(r.cac, 2), fmt(r.num_tool_calls), fmt(r.num_turns), fmt(r.reward, 2),
      el('td', { class: 'preview', title: r.preview || '' }, r.preview || ''),
    ]);
    const pager = el('div', { class: 'pager' },
      page.page > 1 ? el('a', { href: withParam('page', page.page - 1), rel: 'prev' }, '← previous') : el('span', { class: 'muted' }, '← previous'),
      el('span', {}, `page ${page.page}`),
      page.has_next ? el('a', { href: withParam('page', page.page + 1), rel: 'next' }, 'next →') : el('span', { class: 'muted' }, 'next →'));
    listBox.replaceChildren(
      page.rows.length ? table(['trajectory', 'round', 'source', 'domain', 'cluster', 'mode', 'CAC', 'calls', 'turns', 'reward', 'first message'], rows, [1, 6, 7, 8, 9])
        : el('p', { class: 'empty' }, 'No trajectory matches these filters.'),
      pager);
  } catch (e) {
    infoBox.replaceChildren(chips.length ? el('div', {}, 'Filters: ', chips) : null);
    listBox.replaceChildren(errorBox(e));
  }
}

// ---- One trajectory ----

const WORD = /[\p{L}\p{N}_]/u;

/** Where `v` occurs in `text` from `i` as a whole token (no letter, digit or _ on either side). */
function tokenAt(text, v, i) {
  for (let at = text.indexOf(v, i); at >= 0; at = text.indexOf(v, at + 1)) {
    const before = at > 0 ? text[at - 1] : '';
    const after = text[at + v.length] || '';
    if (!(before && WORD.test(before) && WORD.test(v[0])) && !(after && WORD.test(after) && WORD.test(v[v.length - 1]))) return at;
  }
  return -1;
}

/** Text with each whole-token occurrence of the given values marked, as text nodes and <mark>s. */
function markedText(text, values) {
  const out = [];
  const vals = [...new Set(values.filter((v) => v && v.length))];
  let i = 0;
  while (i < text.length && vals.length) {
    let best = -1;
    let len = 0;
    for (const v of vals) {
      const at = tokenAt(text, v, i);
      if (at >= 0 && (best < 0 || at < best || (at === best && v.length > len))) { best = at; len = v.length; }
    }
    if (best < 0) break;
    if (best > i) out.push(text.slice(i, best));
    out.push(el('mark', {}, text.slice(best, best + len)));
    i = best + len;
  }
  if (i < text.length) out.push(text.slice(i));
  return out;
}

/** The chat of a trajectory; `prefix` keeps element ids apart when two chats share a page. */
function chatView(t, prefix, title) {
  const id = (k) => `${prefix}${k}`;
  const used = new Map(); // tool message index -> values later calls took from it
  for (const m of t.messages) for (const c of m.calls) for (const s of c.sources) {
    if (!used.has(s.message)) used.set(s.message, []);
    used.get(s.message).push(s.value);
  }
  const box = el('div', { class: 'chat', id: id('chat') });
  const arrows = svgEl('svg', { class: 'arrows', width: 46, height: 10 });
  box.append(arrows);
  if (title) box.append(el('h3', {}, title));
  if (t.system) {
    box.append(el('div', { class: 'msg system' }, el('details', {},
      el('summary', {}, `System prompt (${fmt(t.system.length)} characters)`), el('pre', { class: 'text' }, t.system))));
  }
  if (t.tools && t.tools.length) {
    box.append(el('details', {}, el('summary', {}, `Tools offered (${t.tools.length})`),
      table(['tool', 'description', 'parameters'], t.tools.map((d) => [el('code', {}, d.name), d.description || '',
        el('details', {}, el('summary', {}, 'schema'), el('pre', {}, prettyJson(d.parameters)))]))));
  }
  const shown = new Set();
  for (const m of t.messages) {
    if (m.role === 'tool' && m.answers !== null && m.answers !== undefined) continue; // shown with its call
    shown.add(m.index);
    const who = el('div', { class: 'who' }, el('span', { class: 'idx' }, `#${m.index}`), el('b', {}, m.role),
      m.name ? el('code', {}, m.name) : null,
      m.moves.map((mv) => el('span', { class: 'badge' }, mv)),
      m.role === 'tool' ? el('span', { class: 'badge warn' }, 'result of no call') : null,
      m.is_error ? el('span', { class: 'badge err' }, 'error') : null);
    // A result of no call keeps the id of results, so arrows from it find it.
    const own = m.role === 'tool' ? id(`r${m.index}`) : id(`m${m.index}`);
    const body = el('div', { class: `msg ${m.role}`, id: own, 'data-msg': m.index }, who);
    if (m.reasoning) {
      body.append(el('details', { class: 'reasoning' }, el('summary', {}, `Reasoning (${fmt(m.reasoning.length)} characters)`), el('pre', {}, m.reasoning)));
    }
    if (m.content) body.append(el('div', { class: 'text' }, m.content));
    for (const c of m.calls) body.append(callView(t, c, id, used));
    box.append(body);
  }
  return box;
}

function prettyJson(text) {
  if (!text) return '';
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch (_) { return text; }
}

function callView(t, c, id, used) {
  const card = el('div', { class: 'call', id: id(`c${c.number}`) });
  card.append(el('div', { class: 'head' },
    el('span', { class: 'muted' }, `call ${c.number}`), el('span', { class: 'name' }, c.name),
    el('span', { class: 'badge', title: 'step complexity c(a_t) with the default weights' }, `c(a_t) = ${fmt(c.step_complexity, 2)}`),
    c.offered === false ? el('span', { class: 'badge warn' }, 'not among the offered tools') : null,
    c.id ? el('span', { class: 'badge' }, `id ${c.id}`) : null,
    c.result === null ? el('span', { class: 'badge warn' }, 'no result') : null,
    c.is_error ? el('span', { class: 'badge err' }, 'error') : null));
  const args = el('div', { class: 'args', id: id(`a${c.number}`) },
    el('pre', {}, markedText(c.arguments_pretty || c.arguments, c.sources.map((s) => s.value))));
  card.append(args);
  if (c.sources.length) {
    // One line (and one arrow) per result the values come from.
    const bySource = new Map();
    for (const s of c.sources) {
      if (!bySource.has(s.message)) bySource.set(s.message, { call: s.call, values: [] });
      bySource.get(s.message).values.push(s.value);
    }
    card.append(el('div', { class: 'deps' }, [...bySource].map(([m, g]) => el('div', { class: 'dep' },
      '↖ ', g.values.map((v, i) => [i ? ', ' : '', el('mark', {}, v)]), g.values.length > 1 ? ' come from ' : ' comes from ',
      el('a', { href: `#${id(`r${m}`)}`, 'data-arrow-from': id(`r${m}`), 'data-arrow-to': id(`a${c.number}`) },
        g.call === null || g.call === undefined ? `the result in message #${m}` : `the result of call ${g.call} (message #${m})`)))));
  }
  if (c.result !== null && c.result !== undefined) {
    const r = t.messages[c.result];
    card.append(el('div', { class: `result${c.is_error ? ' err' : ''}`, id: id(`r${c.result}`), 'data-msg': c.result },
      el('div', { class: 'label' }, `result · message #${c.result}`, c.is_error ? el('span', { class: 'badge err' }, 'error') : el('span', { class: 'badge ok' }, 'ok')),
      el('pre', {}, markedText(r.content || '', used.get(c.result) || []))));
  }
  return card;
}

/** Draws an arrow in the gutter from each result to the arguments that took a value from it. */
function drawArrows(chat) {
  const svg = chat.querySelector('svg.arrows');
  if (!svg) return;
  svg.replaceChildren();
  const box = chat.getBoundingClientRect();
  svg.setAttribute('height', Math.max(10, chat.scrollHeight));
  const defs = svgEl('defs', {}, svgEl('marker', { id: `${chat.id}-head`, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
    svgEl('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#2f5fb3' })));
  svg.append(defs);
  const links = chat.querySelectorAll('[data-arrow-from]');
  let lane = 0;
  for (const l of links) {
    const from = document.getElementById(l.getAttribute('data-arrow-from'));
    const to = document.getElementById(l.getAttribute('data-arrow-to'));
    if (!from || !to || !from.offsetParent || !to.offsetParent) continue;
    const f = from.getBoundingClientRect();
    const t = to.getBoundingClientRect();
    const y1 = f.top - box.top + Math.min(f.height / 2, 14);
    const y2 = t.top - box.top + Math.min(t.height / 2, 14);
    const x = 40;
    const bend = 8 + (lane++ % 4) * 8;
    svg.append(svgEl('path', {
      d: `M${x},${y1} C${bend},${y1} ${bend},${y2} ${x},${y2}`, fill: 'none', stroke: '#2f5fb3', 'stroke-width': 1.5,
      'marker-end': `url(#${chat.id}-head)`, class: 'dep-arrow',
    }));
  }
}

function moveBar(t, prefix) {
  const bar = el('div', { class: 'mode' }, el('span', { class: 'muted' }, 'reasoning mode: '));
  if (!t.moves.length) bar.append(el('code', {}, "'' (no assistant message)"));
  t.moves.forEach((mv, i) => {
    if (i) bar.append(el('span', { class: 'sep' }, '>'));
    const b = el('button', { type: 'button', class: 'move', title: `messages ${mv.messages.map((m) => '#' + m).join(', ')}` }, mv.move);
    b.addEventListener('click', () => {
      const on = !b.classList.contains('on');
      for (const x of bar.querySelectorAll('.move')) x.classList.remove('on');
      for (const x of document.querySelectorAll(`[id^="${prefix}m"].hl, [id^="${prefix}r"].hl`)) x.classList.remove('hl');
      if (!on) return;
      b.classList.add('on');
      let first = null;
      for (const m of mv.messages) {
        const target = document.getElementById(`${prefix}m${m}`) || document.getElementById(`${prefix}r${m}`);
        if (target) { target.classList.add('hl'); first = first || target; }
      }
      if (first) first.scrollIntoView({ behavior: 'auto', block: 'center' });
    });
    bar.append(b);
  });
  if (t.reasoning_mode && t.reasoning_mode !== t.mode) {
    bar.append(el('span', { class: 'badge warn' }, `stored label: ${t.reasoning_mode}`));
  }
  return bar;
}

function facts(t) {
  const f = (k, v) => el('span', {}, `${k} `, el('b', {}, v));
  return el('div', { class: 'facts' },
    f('source', t.source), f('format', t.format), f('round', fmt(t.round)), f('domain', t.domain || '–'),
    f('cluster', t.cluster_id || '–'), f('reward', fmt(t.reward, 2)), f('turns', fmt(t.num_turns)),
    f('calls', fmt(t.num_tool_calls)), f('tokens', fmt(t.num_tokens)), f('CAC', fmt(t.cac, 2)));
}

function lineageView(t, lin) {
  if (!t.parent_id && !lin.blueprint && !lin.batch && !(lin.children && lin.children.length)) return null;
  const box = el('section', { class: 'lineage' }, el('h3', {}, 'Lineage'));
  const dl = el('dl');
  const row = (k, ...v) => dl.append(el('dt', {}, k), el('dd', {}, ...v));
  if (t.parent_id) row('seed', trajLink(t.parent_id));
  if (t.batch_id) row('batch', el('code', {}, t.batch_id), lin.batch ? ` — round ${lin.batch.round}, ${lin.batch.accepted} of ${lin.batch.requested} accepted, backend ${lin.batch.backend}` : '');
  const bp = lin.blueprint;
  if (bp) {
    row('blueprint', el('code', {}, bp.blueprint_id), ` — mutation `, el('b', {}, bp.mutation));
    row('goal', bp.goal);
    row('persona', bp.persona);
    row('expected outcome', bp.expected_outcome);
    row('target', `mode ${bp.target_mode}, CAC ${fmt(bp.target_complexity, 2)}`);
    const steps = Array.isArray(bp.steps) ? bp.steps : [];
    row('planned steps', el('ol', {}, steps.map((s) => el('li', {}, s.kind === 'answer' ? ['answer: ', s.text]
      : (s.calls || []).map((c) => el('div', {}, el('code', {}, `${c.tool}(${JSON.stringify(c.arguments)})`),
        (c.depends_on || []).length ? el('span', { class: 'muted' }, ' ← ' + c.depends_on.map((d) => `${d.argument} from call ${d.call}.${d.field}`).join(', ')) : null,
        c.fails_first ? el('span', { class: 'badge warn' }, 'fails first') : null))))));
  }
  if (lin.children && lin.children.length) {
    row('seed of', lin.children.map((c) => el('span', {}, trajLink(c.traj_id), ` (round ${c.round}) `)));
  }
  box.append(dl);
  return box;
}

function layoutChats(main, chats) {
  const cols = el('div', { class: chats.length > 1 ? 'columns two' : 'columns' }, chats);
  main.append(cols);
  const redraw = () => chats.forEach(drawArrows);
  requestAnimationFrame(redraw);
  window.addEventListener('resize', redraw);
  main.addEventListener('toggle', redraw, true);
}

async function trajectoryPage(main) {
  const idParam = new URLSearchParams(location.search).get('id');
  if (!idParam) { main.append(errorBox('Give a trajectory id: /trajectory?id=…')); return; }
  let d;
  try { d = await api(href('/api/trajectory', { id: idParam })); } catch (e) {
    append(main, [el('h1', {}, 'Trajectory'), errorBox(e)]);
    return;
  }
  const t = d.trajectory;
  append(main, [el('h1', { class: 'mono' }, t.traj_id), facts(t), moveBar(t, 'x-'), lineageView(t, d.lineage)]);
  if (Object.keys(t.metadata || {}).length) {
    main.append(el('details', {}, el('summary', {}, 'Metadata'), el('pre', {}, JSON.stringify(t.metadata, null, 2))));
  }
  const chats = [];
  if (t.parent_id) {
    try {
      const p = await api(href('/api/trajectory', { id: t.parent_id }));
      chats.push(chatView(p.trajectory, 's-', `Seed ${p.trajectory.traj_id} · mode ${p.trajectory.mode}`));
    } catch (e) {
      chats.push(el('div', {}, el('h3', {}, 'Seed'), errorBox(e)));
    }
  }
  chats.push(chatView(t, 'x-', chats.length ? `This trajectory · mode ${t.mode}` : null));
  layoutChats(main, chats);
}

async function rejectedPage(main) {
  const p = new URLSearchParams(location.search);
  let d;
  try { d = await api(href('/api/rejected', { batch: p.get('batch'), seed: p.get('seed') })); } catch (e) {
    append(main, [el('h1', {}, 'Rejected trajectory'), errorBox(e)]);
    return;
  }
  append(main, [el('h1', {}, 'Rejected trajectory'),
    el('div', { class: 'facts' }, el('span', {}, 'batch ', el('b', {}, d.batch_id)), el('span', {}, 'round ', el('b', {}, fmt(d.round))),
      el('span', {}, 'stage ', el('b', {}, d.stage)), el('span', {}, 'seed ', trajLink(d.seed_id))),
    el('h3', {}, 'Why'), el('ul', { class: 'reasons' }, d.reasons.map((r) => el('li', {}, r)))]);
  const chats = [];
  try {
    const s = await api(href('/api/trajectory', { id: d.seed_id }));
    chats.push(chatView(s.trajectory, 's-', `Seed ${s.trajectory.traj_id} · mode ${s.trajectory.mode}`));
  } catch (e) {
    chats.push(el('div', {}, el('h3', {}, 'Seed'), errorBox(e)));
  }
  if (d.trajectory) {
    main.append(moveBar(d.trajectory, 'x-'));
    chats.push(chatView(d.trajectory, 'x-', `Rejected · mode ${d.trajectory.mode}`));
  } else {
    chats.push(el('p', { class: 'empty' }, 'The request failed before a trajectory was made.'));
  }
  layoutChats(main, chats);
}

// ---- Rounds ----

async function roundsPage(main) {
  main.append(el('h1', {}, 'Rounds'));
  let d;
  try { d = await api('/api/rounds'); } catch (e) { main.append(errorBox(e)); return; }
  if (!d.rounds.length) {
    main.append(el('p', { class: 'empty' }, 'No rounds yet: run `tdscale evolve CORPUS --rounds 3 --per-round 200` to evolve this corpus.'));
    return;
  }
  const roundLink = (r) => a('/trajectories', { round: r }, String(r));
  append(main, [
    el('div', { class: 'cards' },
      chart(d.charts.entropy, 'Domain and reasoning-mode entropy of the corpus after each round'),
      chart(d.charts.cac, 'CAC percentiles after each round'),
      chart(d.charts.acceptance, 'Share of the requests the verifier accepted')),
    el('h2', {}, 'The corpus after each round'),
    table(['round', 'strategy', 'trajectories', 'new', 'DE', 'RME', 'modes', 'CAC p50', 'CAC p90', 'CAC p99', 'requested', 'accepted', 'rejected', 'failed', 'acceptance'],
      d.rounds.map((r) => [roundLink(r.round), r.strategy, fmt(r.trajectories), fmt(r.new_trajectories), fmt(r.de_bits), fmt(r.rme_bits), fmt(r.modes),
        fmt(r.cac_p50, 2), fmt(r.cac_p90, 2), fmt(r.cac_p99, 2), fmt(r.requested), fmt(r.accepted), fmt(r.rejected), fmt(r.failed),
        r.acceptance_rate === null ? '–' : `${fmt(100 * r.acceptance_rate, 1)}%`]), [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]),
  ]);
  if (d.batches.length) {
    append(main, [el('h2', {}, 'Batches'), table(['batch', 'round', 'requested', 'accepted', 'rejected', 'failed', 'already present', 'backend', 'seconds'],
      d.batches.map((b) => [el('code', {}, b.batch_id), roundLink(b.round), fmt(b.requested), fmt(b.accepted), fmt(b.rejected), fmt(b.failed), fmt(b.already_present), b.backend, fmt(b.seconds, 1)]),
      [2, 3, 4, 5, 6, 8])]);
  }
  main.append(el('h2', {}, 'Why the verifier rejected, and what failed'));
  if (!d.reasons.length) {
    main.append(el('p', { class: 'empty' }, 'Nothing was rejected.'));
    return;
  }
  main.append(table(['round', 'stage', 'reason', 'count', 'examples'], d.reasons.map((g) => [
    roundLink(g.round), g.stage, g.kind, fmt(g.count),
    el('td', {}, g.examples.map((e) => el('div', {},
      e.has_trajectory ? a('/rejected', { batch: e.batch_id, seed: e.seed_id }, 'view') : el('span', { class: 'muted' }, 'no trajectory'),
      ' · seed ', trajLink(e.seed_id), ' · ', el('span', { class: 'muted' }, e.reason)))),
  ]), [3]));
}

// ---- Clusters ----

function edgeGraph(tools, edges) {
  // Edges name tools by id; the labels are their names.
  const label = new Map(tools.map((t) => [t.tool_id, t.name]));
  const names = [...new Set([...tools.map((t) => t.tool_id), ...edges.flatMap((e) => [e.from_tool, e.to_tool])])];
  const n = names.length;
  if (!n) return null;
  const W = 760; const H = 520; const R = Math.min(W, H) / 2 - 60;
  const pos = new Map(names.map((name, i) => [name, [W / 2 + R * Math.cos(2 * Math.PI * i / n - Math.PI / 2), H / 2 + R * Math.sin(2 * Math.PI * i / n - Math.PI / 2)]]));
  const svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: 'graph', role: 'img', 'aria-label': 'dependency edges' });
  svg.append(svgEl('defs', {}, svgEl('marker', { id: 'g-head', viewBox: '0 0 10 10', refX: 22, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: 'userSpaceOnUse', orient: 'auto' },
    svgEl('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#666' }))));
  for (const e of edges) {
    const [x1, y1] = pos.get(e.from_tool); const [x2, y2] = pos.get(e.to_tool);
    svg.append(svgEl('line', { x1, y1, x2, y2, stroke: '#666', 'stroke-opacity': 0.35 + 0.5 * Math.min(1, Number(e.score) || 0), 'stroke-width': 1.2, 'marker-end': 'url(#g-head)' },
      svgEl('title', {}, `${e.from_tool} → ${e.to_tool} via ${e.field} (score ${fmt(e.score, 2)})`)));
  }
  for (const [name, [x, y]] of pos) {
    svg.append(svgEl('circle', { cx: x, cy: y, r: 6, fill: '#2f5fb3' }, svgEl('title', {}, name)));
    svg.append(svgEl('text', { x, y: y - 10, 'font-size': 11, 'text-anchor': 'middle' }, label.get(name) || name));
  }
  return el('figure', {}, svg, el('figcaption', {}, 'Each arrow is a dependency edge: an output of one tool feeds an input of the other.'));
}

async function clustersPage(main) {
  const id = new URLSearchParams(location.search).get('id');
  if (id) return clusterPage(main, id);
  main.append(el('h1', {}, 'Clusters'));
  let d;
  try { d = await api('/api/clusters'); } catch (e) { main.append(errorBox(e)); return; }
  if (!d.clusters.length) {
    main.append(el('p', { class: 'empty' }, 'No clusters: run `tdscale clusters build CORPUS` after ingesting tool catalogs.'));
    return;
  }
  append(main, [
    el('div', { class: 'cards' }, chart(d.charts.coverage, 'Distinct tools and capabilities covered as the greedy pass selects clusters')),
    table(['cluster', 'service', 'domain', 'tools', 'edges', 'selected', 'rank', 'coverage gain', 'trajectories'],
      d.clusters.map((c) => [a('/clusters', { id: c.cluster_id }, c.cluster_id), c.service, c.domain, fmt(c.size), fmt(c.internal_edges),
        c.selected ? 'yes' : 'no', fmt(c.rank), fmt(c.coverage_gain),
        c.trajectories ? a('/trajectories', { cluster: c.cluster_id }, fmt(c.trajectories)) : '0']), [3, 4, 6, 7, 8]),
  ]);
}

async function clusterPage(main, id) {
  let d;
  try { d = await api(href('/api/cluster', { id })); } catch (e) {
    append(main, [el('h1', {}, 'Cluster'), errorBox(e)]);
    return;
  }
  const c = d.cluster;
  append(main, [
    el('h1', { class: 'mono' }, c.cluster_id),
    el('div', { class: 'facts' }, el('span', {}, 'service ', el('b', {}, c.service)), el('span', {}, 'domain ', el('b', {}, c.domain)),
      el('span', {}, 'tools ', el('b', {}, fmt(c.size))), el('span', {}, 'edges ', el('b', {}, fmt(c.internal_edges))),
      el('span', {}, c.selected ? `selected at rank ${c.rank}, gain ${c.coverage_gain}` : 'not selected'),
      el('span', {}, a('/trajectories', { cluster: c.cluster_id }, `${fmt(d.trajectories)} trajectories`))),
    el('p', {}, a('/clusters', {}, '← all clusters')),
    el('div', { class: 'cards' }, edgeGraph(d.tools, d.edges)),
    el('h2', {}, 'Tools'),
    table(['tool', 'description', 'input', 'output'], d.tools.map((t) => [el('code', {}, t.name), t.description || '',
      el('details', {}, el('summary', {}, 'schema'), el('pre', {}, prettyJson(t.parameters))),
      t.output_schema ? el('details', {}, el('summary', {}, 'schema'), el('pre', {}, prettyJson(t.output_schema))) : '–'])),
    el('h2', {}, 'Dependency edges'),
    d.edges.length ? table(['from', 'to', 'field', 'score', 'evidence'], d.edges.map((e) => [el('code', {}, e.from_tool), el('code', {}, e.to_tool),
      el('code', {}, e.field), fmt(e.score, 2), e.evidence]), [3]) : el('p', { class: 'empty' }, 'No edge between these tools.'),
  ]);
}

// ---- SQL console ----

const EXAMPLES = [
  ['Diversity by round', 'SELECT "round", count(*) AS trajectories, domain_entropy(domain) AS de_bits, reasoning_mode_entropy(mode) AS rme_bits\nFROM trajectory_metrics GROUP BY "round" ORDER BY "round"'],
  ['Failing tool calls', 'SELECT tool_name, count(*) AS calls, sum(CASE WHEN is_error THEN 1 ELSE 0 END) AS errors\nFROM tool_calls GROUP BY tool_name ORDER BY errors DESC LIMIT 20'],
  ['Most complex trajectories', 'SELECT traj_id, domain, mode, cac FROM trajectory_metrics ORDER BY cac DESC LIMIT 20'],
  ['Rarest modes', 'SELECT mode, count(*) AS n FROM trajectory_metrics GROUP BY mode ORDER BY n, mode LIMIT 20'],
];

async function sqlPage(main) {
  const params = new URLSearchParams(location.search);
  const area = el('textarea', { name: 'sql', rows: 8, spellcheck: 'false', 'aria-label': 'SQL' });
  area.value = params.get('q') || EXAMPLES[0][1];
  const run = el('button', { type: 'submit', id: 'run' }, 'Run');
  const csv = el('a', { class: 'button secondary', id: 'download-csv' }, 'Download CSV');
  const parquet = el('a', { class: 'button secondary', id: 'download-parquet' }, 'Download Parquet');
  const examples = el('select', { 'aria-label': 'examples' }, el('option', { value: '' }, 'examples…'), EXAMPLES.map(([n], i) => el('option', { value: String(i) }, n)));
  const out = el('section', { id: 'result' });
  const form = el('form', {}, area, el('div', { class: 'pager' }, run, csv, parquet, examples,
    el('span', { class: 'muted' }, 'Read-only: one query (SELECT, WITH, VALUES, EXPLAIN). Ctrl+Enter runs it.')));
  append(main, [el('h1', {}, 'SQL'), form, out]);
  const links = () => {
    csv.setAttribute('href', href('/api/sql/download', { format: 'csv', sql: area.value }));
    parquet.setAttribute('href', href('/api/sql/download', { format: 'parquet', sql: area.value }));
  };
  links();
  area.addEventListener('input', links);
  examples.addEventListener('change', () => {
    if (examples.value !== '') { area.value = EXAMPLES[Number(examples.value)][1]; links(); }
  });
  area.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); form.requestSubmit(); }
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    history.replaceState(null, '', href('/sql', { q: area.value }));
    out.replaceChildren(el('p', { class: 'loading' }, 'Running…'));
    run.disabled = true;
    try {
      const r = await api('/api/sql', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sql: area.value }) });
      const info = `${fmt(r.rows.length)} row${r.rows.length === 1 ? '' : 's'}${r.truncated ? ` (the first ${fmt(r.max_rows)}: download for all)` : ''} in ${fmt(r.elapsed_ms)} ms`;
      out.replaceChildren(el('p', { class: 'info', id: 'sql-info' }, info),
        table(r.columns.map((c) => el('span', { title: c.type }, c.name, el('span', { class: 'sub' }, c.type))),
          r.rows.map((row) => row.map((v) => (v === null ? el('td', { class: 'muted' }, 'NULL') : el('td', {}, el('pre', {}, v)))))));
    } catch (e) {
      out.replaceChildren(errorBox(e));
    } finally {
      run.disabled = false;
    }
  });
  if (params.get('q')) form.requestSubmit();
}

// ---- Routing ----

const PAGES = {
  '/': overview,
  '/trajectories': browser,
  '/trajectory': trajectoryPage,
  '/rejected': rejectedPage,
  '/rounds': roundsPage,
  '/clusters': clustersPage,
  '/sql': sqlPage,
};

async function start() {
  wireCharts();
  const path = location.pathname;
  for (const n of document.querySelectorAll('nav a[data-page]')) {
    const p = n.getAttribute('data-page');
    if (p === path || (p === '/trajectories' && path === '/trajectory')) n.classList.add('active');
  }
  api('/api/status').then((s) => { document.getElementById('corpus').textContent = s.corpus; }).catch(() => {});
  const main = document.getElementById('main');
  main.replaceChildren();
  const pageFn = PAGES[path];
  if (!pageFn) { main.append(errorBox(`No page ${path}`)); return; }
  try {
    await pageFn(main);
  } catch (e) {
    main.append(errorBox(e));
  }
  document.body.setAttribute('data-ready', '1');
}

start();
