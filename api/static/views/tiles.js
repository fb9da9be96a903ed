/* A tile per job state with its count (click: show that state's jobs; shift-click: add it to
 * the filter), and the strip of broker counters under the chart. The tiles are built from the
 * states GET /meta lists, in their order. */
import { $, el, setText } from '../dom.js';
import { fmtCount, fmtInt, num } from '../format.js';
import { STATE, STATES, TERMINAL } from '../meta.js';
import { state } from '../state.js';
import { finishedLast } from '../throughput.js';
import { setStatusFilter, toggleStatus } from './jobs.js';

const els = { count: {}, sub: {}, counterStrip: {} };

/** What a tile says under its count before there are figures to say. */
function hint(s) {
  const hints = {
    [STATE.DEFERRED]: 'on dependencies', [STATE.SCHEDULED]: 'delayed',
    [STATE.QUEUED]: 'waiting', [STATE.RUNNING]: 'in progress',
  };
  return hints[s] ?? (TERMINAL.has(s) ? 'total' : '');
}

function makeTile(s) {
  const tile = el('button', 'tile s-' + s);
  tile.type = 'button';
  tile.dataset.status = s;
  tile.title = `Filter jobs: ${s} (shift-click adds to the filter)`;
  const count = el('span', 'tile-value', '0');
  count.id = 'count-' + s;
  const sub = el('span', 'tile-sub', hint(s));
  sub.id = 'sub-' + s;
  tile.append(el('span', 'tile-label', s[0].toUpperCase() + s.slice(1)), count, sub);
  tile.addEventListener('click', (e) => {
    if (e.shiftKey || e.ctrlKey || e.metaKey) toggleStatus(s);  // add to the filter
    else {
      const only = state.filter.statuses.size === 1 && state.filter.statuses.has(s);
      setStatusFilter(only ? [] : [s]);
    }
  });
  els.count[s] = count;
  els.sub[s] = sub;
  return tile;
}

export function initTiles() {
  $('#counters').replaceChildren(...STATES.map(makeTile));
  for (const node of document.querySelectorAll('[id^="counter-"]')) {
    els.counterStrip[node.id.slice('counter-'.length)] = node;
  }
}

export function renderCounts() {
  for (const s of STATES) {
    const node = els.count[s];
    const v = Math.max(0, Math.round(state.counts[s] || 0));
    if (node.dataset.value !== String(v)) {
      node.textContent = fmtCount(v);
      node.dataset.value = String(v);
      node.title = `${v.toLocaleString('en')} ${s}`;
    }
  }
  const nq = Object.keys(state.queues).length;
  setText(els.sub[STATE.QUEUED], nq ? `across ${nq} queue${nq === 1 ? '' : 's'}` : hint(STATE.QUEUED));
  let cap = 0;
  for (const w of state.workers.values()) cap += num(w.capacity);
  setText(els.sub[STATE.RUNNING], cap ? `of ${cap} slots` : hint(STATE.RUNNING));
  setText(els.sub[STATE.SUCCEEDED], `+${finishedLast(60, 0)} last min`);
  setText(els.sub[STATE.FAILED], `+${finishedLast(60, 1)} last min`);
  for (const [key, node] of Object.entries(els.counterStrip)) {
    const v = state.counters[key];
    setText(node, v == null ? '–' : fmtInt(num(v)));
  }
}
