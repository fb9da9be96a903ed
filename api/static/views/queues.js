/* The queues panel: each queue's depth by state (a bar of the states a job waits or runs in,
 * as GET /meta lists them), its jobs no live worker can run, its rate limit and its controls;
 * and the queue names the filter and the submit form offer. */
import { purgeQueue, setQueuePaused } from '../actions.js';
import { $, el, elements, setAttr, setText } from '../dom.js';
import { pos } from '../format.js';
import { ACTIVE, STATES } from '../meta.js';
import { state } from '../state.js';

const els = {};
const queueRows = new Map();

export function initQueues() {
  Object.assign(els, elements({
    queues: '#queues', filterQueue: '#filter-queue', queueNames: '#queue-names',
  }));
  $('#queues-legend').replaceChildren(...ACTIVE.map((s) => el('span', 'lg lg-' + s, s)));
}

/** The jobs of a queue that wait or run: its depth. */
function depth(c) {
  let n = 0;
  for (const s of ACTIVE) n += pos(c[s]);
  return n;
}

export function renderQueues() {
  const names = Object.keys(state.queues).sort((a, b) => (a === 'default' ? -1 : b === 'default' ? 1 : a.localeCompare(b)));
  const box = els.queues;
  if (!names.length) {
    if (!box.querySelector('.empty')) box.replaceChildren(el('div', 'empty', 'No queues yet'));
    queueRows.clear();
    return;
  }
  const empty = box.querySelector('.empty');
  if (empty) empty.remove();
  let maxActive = 1;
  for (const n of names) maxActive = Math.max(maxActive, depth(state.queues[n]));
  names.forEach((name, i) => {
    let row = queueRows.get(name);
    if (!row) {
      row = makeQueueRow(name);
      queueRows.set(name, row);
    }
    updateQueueRow(row, state.queues[name], maxActive);
    if (box.children[i] !== row.root) box.insertBefore(row.root, box.children[i] || null);
  });
  for (const [name, row] of queueRows) {
    if (!(name in state.queues)) {
      row.root.remove();
      queueRows.delete(name);
    }
  }
}

function makeQueueControls(name) {
  const box = el('div', 'queue-controls');
  const limit = el('span', 'queue-limit');
  const pause = el('button', 'btn btn-small queue-pause', 'Pause');
  pause.type = 'button';
  pause.addEventListener('click', () => setQueuePaused(name, pause.dataset.paused !== 'true'));
  const purge = el('button', 'btn btn-small btn-danger queue-purge', 'Purge');
  purge.type = 'button';
  purge.title = 'cancel every waiting job of this queue';
  purge.addEventListener('click', () => purgeQueue(name));
  box.append(limit, pause, purge);
  return { box, limit, pause };
}

function updateQueueControls(row, c) {
  const paused = !!c.paused;
  setAttr(row.root, 'data-paused', String(paused));
  row.controls.pause.dataset.paused = String(paused);
  setText(row.controls.pause, paused ? 'Resume' : 'Pause');
  const rate = c.rate_limit;
  setText(row.controls.limit, (paused ? 'paused · ' : '') + (rate ? `≤ ${rate}/s` : 'no limit'));
}

function makeQueueRow(name) {
  const root = el('div', 'queue-row');
  root.dataset.queue = name;
  const title = el('div', 'queue-name', name);
  title.title = name;
  const depthBox = el('div', 'queue-depth');
  const depthNum = el('span', null, '0');
  depthBox.append(depthNum, el('small', null, 'active'));
  const bar = el('div', 'queue-bar');
  const seg = {};
  for (const s of [...ACTIVE].reverse()) {  // the furthest along first
    seg[s] = el('span', 'qb-' + s);
    bar.append(seg[s]);
  }
  const meta = el('div', 'queue-meta');
  const metaVals = {};
  for (const s of STATES) {
    const span = el('span', 'm-' + s);
    const b = el('b', null, '0');
    span.append(b, document.createTextNode(' ' + s));
    metaVals[s] = b;
    meta.append(span);
  }
  const unserved = el('div', 'queue-unserved');
  unserved.hidden = true;
  const controls = makeQueueControls(name);
  root.append(title, depthBox, bar, meta, unserved, controls.box);
  return { root, depthNum, seg, metaVals, unserved, controls };
}

function updateQueueRow(row, c, maxActive) {
  setText(row.depthNum, String(depth(c)));
  for (const [s, seg] of Object.entries(row.seg)) {
    const style = ((pos(c[s]) / maxActive) * 100).toFixed(2) + '%';
    if (seg.style.width !== style) seg.style.width = style;
    seg.title = `${s}: ${pos(c[s])}`;
  }
  for (const s of STATES) setText(row.metaVals[s], String(Math.round(pos(c[s]))));
  // queued jobs no live worker can run (their task, or the exec/pickle flag, is served nowhere)
  const unserved = Math.round(pos(c.unserved));
  row.unserved.hidden = unserved === 0;
  setAttr(row.root, 'data-unserved', String(unserved));
  setText(row.unserved, unserved ? `${unserved} waiting for a worker that can run them` : '');
  updateQueueControls(row, c);
}

/** The queue filter's options and the submit form's suggestions: every queue known. */
export function renderQueueOptions() {
  const names = new Set(Object.keys(state.queues));
  for (const w of state.workers.values()) for (const q of w.queues || []) names.add(String(q));
  const sorted = [...names].sort();
  const key = sorted.join('\u0000');
  if (els.filterQueue.dataset.key === key) return;
  els.filterQueue.dataset.key = key;
  const current = els.filterQueue.value;
  const opts = [new Option('all queues', '')];
  for (const n of sorted) opts.push(new Option(n, n));
  els.filterQueue.replaceChildren(...opts);
  els.filterQueue.value = sorted.includes(current) ? current : '';
  els.queueNames.replaceChildren(...sorted.map((n) => new Option(n)));
}
