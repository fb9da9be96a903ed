/* The workers: a table of the live ones with their load, and a worker's own view (its running
 * and latest jobs as links, its queues, capacity, counters and last heartbeat). */
import { api } from '../api.js';
import { $, cellsOf, el, elements, setAttr, setText } from '../dom.js';
import { fmtDateTime, fmtDur, fmtInt, num, parseTime } from '../format.js';
import { STATE } from '../meta.js';
import { authProblem, onPoll, onResync } from '../refresh.js';
import { markDirty } from '../render.js';
import { onJobChange } from '../sse.js';
import { eventMark, mergeJobs, state } from '../state.js';
import { toast } from './feed.js';
import { renderFields, renderLinks } from './links.js';

const WORKER_JOBS = 20;  // the latest jobs the worker view lists
const els = {};
const workerRows = new Map();

export function initWorkers() {
  Object.assign(els, elements({
    workersBody: '#workers-table tbody', workersEmpty: '#workers-empty',
    workersSummary: '#workers-summary', workerDetail: '#worker-detail',
    workerDetailName: '#worker-detail-name', workerDetailHost: '#worker-detail-host',
    workerDetailState: '#worker-detail-state', workerFields: '#worker-fields',
    workerRunning: '#worker-running', workerRunningCount: '#worker-running-count',
    workerJobs: '#worker-jobs',
  }));
  els.workersBody.addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-worker]');
    if (tr) openWorker(tr.dataset.worker);
  });
  $('#btn-close-worker').addEventListener('click', closeWorker);
  const refetch = () => state.workerId && fetchWorker(state.workerId);
  onResync(refetch);
  onPoll(refetch);
  onJobChange(() => state.workerId && markDirty('worker'));
}

export function isWorkerOpen() {
  return !els.workerDetail.hidden;
}

// ------------------------------------------------------------------ the table
export function renderWorkers() {
  const names = [...state.workers.keys()].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  const tbody = els.workersBody;
  names.forEach((name, i) => {
    let row = workerRows.get(name);
    if (!row) {
      row = makeWorkerRow(name);
      workerRows.set(name, row);
    }
    updateWorkerRow(row, state.workers.get(name));
    if (tbody.children[i] !== row.tr) tbody.insertBefore(row.tr, tbody.children[i] || null);
  });
  for (const [name, row] of workerRows) {
    if (!state.workers.has(name)) {
      row.tr.remove();
      workerRows.delete(name);
    }
  }
  els.workersEmpty.hidden = names.length > 0;
  let cap = 0;
  let busy = 0;
  let done = 0;
  for (const w of state.workers.values()) {
    cap += num(w.capacity);
    busy += runningCount(w);
    done += num(w.processed);
  }
  setText(els.workersSummary, names.length ? `${busy}/${cap} slots busy · ${done} processed` : '');
}

function runningCount(w) {
  return Array.isArray(w.running) ? w.running.length : num(w.running);
}

function makeWorkerRow(name) {
  const tr = document.createElement('tr');
  tr.dataset.worker = name;
  const td = cellsOf(tr);
  const nameCell = td('w-main');
  const nameSpan = el('span', 'w-name', name);
  const host = el('div', 'w-host');  // under the name: one column fewer in a narrow panel
  nameCell.append(nameSpan, host);
  const queues = td('w-queues');
  const loadCell = td('');
  const load = el('div', 'load');
  const bar = el('div', 'load-bar');
  const barFill = el('i');
  bar.append(barFill);
  const loadText = el('span', 'load-text');
  load.append(bar, loadText);
  loadCell.append(load);
  const processed = td('num');
  const failed = td('num');
  return { tr, nameSpan, host, queues, bar, barFill, loadText, processed, failed, queuesKey: null };
}

/** How long ago a worker was last heard from. */
function lastSeen(w) {
  if (w.last_seen_s == null) return '–';
  const seenS = num(w.last_seen_s, 0);
  return seenS < 1 ? 'just now' : fmtDur(seenS * 1000) + ' ago';
}

function updateWorkerRow(row, w) {
  const running = runningCount(w);
  const cap = num(w.capacity);
  setAttr(row.tr, 'data-running', running);
  setAttr(row.tr, 'data-capacity', cap);
  const seenS = num(w.last_seen_s, 0);
  setAttr(row.tr, 'data-health', seenS > 10 ? 'lost' : seenS > 3 ? 'stale' : 'ok');
  setText(row.host, w.host != null ? String(w.host) : '–');
  row.host.title = w.host != null ? `${w.host}${w.pid != null ? ' pid ' + w.pid : ''}` : '';
  const qs = Array.isArray(w.queues) ? w.queues.map(String) : [];
  const qKey = qs.join(',');
  if (row.queuesKey !== qKey) {
    row.queuesKey = qKey;
    row.queues.replaceChildren(...qs.map((q) => el('span', 'chip', q)));
  }
  const frac = cap > 0 ? Math.min(1, running / cap) : 0;
  const width = (frac * 100).toFixed(1) + '%';
  if (row.barFill.style.width !== width) row.barFill.style.width = width;
  row.bar.classList.toggle('full', cap > 0 && running >= cap);
  row.bar.classList.toggle('idle', running === 0);
  setText(row.loadText, `${running}/${cap}`);
  row.bar.title = Array.isArray(w.running) && w.running.length ? 'running: ' + w.running.join(', ') : 'idle';
  setText(row.processed, fmtInt(num(w.processed)));
  setText(row.failed, fmtInt(num(w.failed)));
  const seen = w.last_seen_s == null ? 'unknown' : lastSeen(w);
  const tasks = Array.isArray(w.tasks) && w.tasks.length ? `\ntasks: ${w.tasks.join(', ')}` : '';
  row.nameSpan.title = `${w.name}\nlast heartbeat: ${seen}${tasks}`;
}

// ------------------------------------------------------------------ the worker view
async function fetchWorker(name) {
  const startIdx = eventMark();
  try {
    const [w, page] = await Promise.all([
      api('workers/' + encodeURIComponent(name)).catch((err) => {
        if (err.status === 404) return null;
        throw err;
      }),
      api('jobs?' + new URLSearchParams({ worker: name, limit: String(WORKER_JOBS) }).toString()),
    ]);
    if (state.workerId !== name) return;
    if (w) state.workers.set(name, { ...(state.workers.get(name) || {}), ...w });
    state.workerGone = !w;
    const list = (page && page.jobs) || [];
    mergeJobs(list, startIdx);
    state.workerJobs = list.map((j) => String(j.id));
  } catch (err) {
    if (err.status === 401) authProblem();
    else toast(`worker ${name}: ${err.message}`, 'error');
  }
  markDirty('worker');
}

export function openWorker(name) {
  name = String(name);
  state.workerId = name;
  state.workerJobs = null;
  state.workerGone = false;
  els.workerDetail.hidden = false;
  setText(els.workerDetailName, name);
  renderWorkerDetail();
  fetchWorker(name);
}

export function closeWorker() {
  state.workerId = null;
  state.workerJobs = null;
  els.workerDetail.hidden = true;
}

export function renderWorkerDetail() {
  const name = state.workerId;
  if (!name) return;
  const w = state.workers.get(name) || {};
  const gone = state.workerGone;
  setText(els.workerDetailHost, w.host != null ? `${w.host}${w.pid != null ? ' · pid ' + w.pid : ''}` : '');
  setAttr(els.workerDetailState, 'data-status', gone ? STATE.CANCELLED : STATE.SUCCEEDED);  // their colours
  setText(els.workerDetailState, gone ? 'gone' : 'live');
  const running = Array.isArray(w.running) ? w.running.map(String) : [];
  const fields = [
    ['Queues', (w.queues || []).join(', ') || '–'],
    ['Capacity', w.capacity ?? '–'],
    ['Running', `${running.length} of ${num(w.capacity)}`],
    ['Processed', fmtInt(num(w.processed))],
    ['Failed', fmtInt(num(w.failed))],
    ['Last heartbeat', lastSeen(w)],
    ['Joined', w.joined_at ? fmtDateTime(parseTime(w.joined_at)) : '–'],
    ['Version', w.version || '–'],
    ['Tasks', Array.isArray(w.tasks) && w.tasks.length ? w.tasks.join(', ') : '–'],
  ];
  renderFields(els.workerFields, fields);
  setText(els.workerRunningCount, String(running.length));
  renderLinks(els.workerRunning, running, gone ? 'the worker has gone' : 'idle');
  renderLinks(els.workerJobs, state.workerJobs || [], state.workerJobs ? 'no jobs yet' : 'loading…');
}
