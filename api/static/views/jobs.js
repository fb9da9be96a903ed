/* The jobs table: the latest jobs, live, or an older page of them (GET /jobs's cursor);
 * filtered by states (the chips, built from GET /meta's states), queue and text; and the bulk
 * actions over the jobs the filter covers. */
import { bulkCounts, purgeWaiting, retryAllFailed } from '../actions.js';
import { api } from '../api.js';
import { serverNow } from '../clock.js';
import { $, cellsOf, el, elements, setAttr, setText } from '../dom.js';
import { fmtDateTime, fmtDur, num, parseTime, shortId } from '../format.js';
import { LIMITS, STATE, STATES, TERMINAL } from '../meta.js';
import { jobsQuery, refreshJobs } from '../refresh.js';
import { markDirty } from '../render.js';
import { byNewest, eventMark, livePage, mergeJobs, pruneJobs, sortKey, state } from '../state.js';
import { openDetail } from './detail.js';
import { toast } from './feed.js';

const MAX_ROWS = 200;        // rows of the live list
const els = {};
const jobRows = new Map();   // id -> row cache

export function initJobs() {
  Object.assign(els, elements({
    jobsBody: '#jobs-table tbody', jobsEmpty: '#jobs-empty', jobsCount: '#jobs-count',
    jobsPanel: '.panel-jobs', filterText: '#filter-text', filterQueue: '#filter-queue',
    pageLabel: '#page-label', pageNewer: '#page-newer', pageNewest: '#page-newest',
    pageOlder: '#page-older', btnRetryFailed: '#btn-retry-failed',
    btnPurgeWaiting: '#btn-purge-waiting',
  }));
  els.filterChips = STATES.map(makeChip);
  $('#filter-statuses').replaceChildren(...els.filterChips);
  bindJobs();
}

function makeChip(s) {
  const chip = el('button', 'chip-toggle', s);
  chip.type = 'button';
  chip.dataset.status = s;
  chip.setAttribute('aria-pressed', 'false');
  chip.addEventListener('click', () => toggleStatus(s));
  return chip;
}

function bindJobs() {
  els.jobsBody.addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-job-id]');
    if (tr) openDetail(tr.dataset.jobId);
  });
  els.jobsBody.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter' && e.key !== ' ') return;
    const tr = e.target.closest('tr[data-job-id]');
    if (tr) {
      e.preventDefault();
      openDetail(tr.dataset.jobId);
    }
  });
  els.filterQueue.addEventListener('change', () => {
    state.filter.queue = els.filterQueue.value;
    pageLive();
    markDirty('bulk');
    refreshJobs();
  });
  els.filterText.addEventListener('input', () => {
    state.filter.text = els.filterText.value.trim().toLowerCase();
    markDirty('jobs');
  });
  els.pageOlder.addEventListener('click', pageOlder);
  els.pageNewer.addEventListener('click', pageNewer);
  els.pageNewest.addEventListener('click', () => {
    pageLive();
    refreshJobs();
  });
  els.btnRetryFailed.addEventListener('click', retryAllFailed);
  els.btnPurgeWaiting.addEventListener('click', purgeWaiting);
}

// ------------------------------------------------------------------ the filter
/** Show the jobs in any of `statuses` (none: all), live from page 1. */
export function setStatusFilter(statuses) {
  state.filter.statuses = new Set(statuses);
  const on = state.filter.statuses;
  for (const t of document.querySelectorAll('.tile[data-status]')) t.classList.toggle('active', on.has(t.dataset.status));
  for (const c of els.filterChips) c.setAttribute('aria-pressed', String(on.has(c.dataset.status)));
  pageLive();
  refreshJobs();
}

export function toggleStatus(status) {
  const next = new Set(state.filter.statuses);
  if (next.has(status)) next.delete(status);
  else next.add(status);
  setStatusFilter(next);
}

function matchesFilter(rec) {
  const f = state.filter;
  if (f.statuses.size && !f.statuses.has(rec.status)) return false;
  if (f.queue && (rec.queue || 'default') !== f.queue) return false;
  return matchesText(rec, f.text);
}

/** The free-text filter: id, task, worker or queue contains it. */
function matchesText(rec, text) {
  if (!text) return true;
  return `${rec.id} ${rec.task || ''} ${rec.worker || ''} ${rec.queue || ''}`.toLowerCase().includes(text);
}

// ------------------------------------------------------------------ the table
export function renderJobs() {
  pruneJobs();
  const page = state.page;
  let list = [];
  if (page.ids) {
    // an older page: the jobs GET /jobs gave, in its order, their status kept live
    for (const id of page.ids) {
      const rec = state.jobs.get(id);
      if (rec && matchesText(rec, state.filter.text)) list.push(rec);
    }
  } else {
    for (const rec of state.jobs.values()) if (matchesFilter(rec)) list.push(rec);
    list.sort(byNewest);
  }
  const shown = list.length > MAX_ROWS ? list.slice(0, MAX_ROWS) : list;
  state.oldestShown = shown.length ? shown[shown.length - 1].id : null;
  renderPager(shown.length);
  renderRows(shown);
  els.jobsEmpty.hidden = shown.length > 0;
  if (!shown.length) {
    setText(els.jobsEmpty, page.ids ? 'No older jobs.' : state.filter.statuses.size || state.filter.queue || state.filter.text
      ? 'No job matches the filter.'
      : state.jobsLoaded ? 'No jobs yet: submit one with the form.' : 'Loading…');
  }
  setText(els.jobsCount, list.length > shown.length ? `showing ${shown.length} of ${list.length}` : `${shown.length}`);
}

function renderRows(shown) {
  const tbody = els.jobsBody;
  const keep = new Set();
  const now = serverNow();
  for (let i = 0; i < shown.length; i++) {
    const rec = shown[i];
    keep.add(rec.id);
    let row = jobRows.get(rec.id);
    if (!row) {
      row = makeJobRow(rec.id);
      jobRows.set(rec.id, row);
    }
    updateJobRow(row, rec, now);
    row.tr.classList.toggle('selected', rec.id === state.detailId);  // the job the detail shows
    if (tbody.children[i] !== row.tr) tbody.insertBefore(row.tr, tbody.children[i] || null);
  }
  for (const [id, row] of jobRows) {
    if (!keep.has(id)) {
      row.tr.remove();
      jobRows.delete(id);
    }
  }
}

function makeJobRow(id) {
  const tr = document.createElement('tr');
  tr.dataset.jobId = id;
  tr.tabIndex = 0;
  const td = cellsOf(tr);
  const idCell = td('c-id');
  const code = el('code', null, shortId(id));
  code.title = id;
  idCell.append(code);
  const task = td('c-task');
  const queue = td('c-queue');
  const statusCell = td('c-status');
  const badge = el('span', 'badge');
  const mini = el('div', 'mini-progress');
  const miniBar = el('i');
  mini.append(miniBar);
  mini.hidden = true;
  statusCell.append(badge, mini);
  const att = td('c-att num');
  const worker = td('c-worker');
  const time = td('c-time num');
  return { tr, task, queue, badge, mini, miniBar, att, worker, time, sig: '' };
}

/** Update a row in place; only the cells whose values changed are written. */
function updateJobRow(row, rec, now) {
  const status = rec.status || STATE.QUEUED;
  const frac = rec.progress && rec.progress.fraction != null ? Math.max(0, Math.min(1, num(rec.progress.fraction))) : null;
  const sig = `${status}|${rec.task}|${rec.queue}|${rec.attempts}|${rec.max_retries}|${rec.worker}|${frac}`;
  if (sig !== row.sig) {
    row.sig = sig;
    setAttr(row.tr, 'data-status', status);
    setText(row.task, rec.task || (rec.kind && rec.kind !== 'task' ? rec.kind : '–'));
    row.task.title = rec.task || '';
    setText(row.queue, rec.queue || 'default');
    setAttr(row.badge, 'data-status', status);
    setText(row.badge, status);
    const attempts = num(rec.attempts);
    setText(row.att, rec.max_retries ? `${attempts}/${num(rec.max_retries) + 1}` : String(attempts));
    setText(row.worker, rec.worker || '–');
    row.worker.title = rec.worker || '';
    const showProgress = status === STATE.RUNNING && frac !== null;
    row.mini.hidden = !showProgress;
    if (showProgress) row.miniBar.style.width = (frac * 100).toFixed(1) + '%';
  }
  const t = timeCell(rec, status, now);
  setText(row.time, t.text);
  if (row.time.title !== t.title) row.time.title = t.title;
}

function timeCell(rec, status, now) {
  if (TERMINAL.has(status)) {
    const dur = rec._f != null && rec._s != null ? rec._f - rec._s : null;
    const ago = rec._f != null ? `finished ${fmtDur(now - rec._f)} ago` : '';
    if (dur != null) return { text: fmtDur(dur), title: `ran ${fmtDur(dur)}; ${ago}` };
    return { text: rec._f != null ? fmtDur(now - rec._f) + ' ago' : '–', title: ago };
  }
  if (status === STATE.RUNNING && rec._s != null) {
    return { text: '▶ ' + fmtDur(now - rec._s), title: `running for ${fmtDur(now - rec._s)}` };
  }
  if (status === STATE.SCHEDULED) {
    const runAt = parseTime(rec.run_at);
    if (runAt != null && runAt > now) return { text: 'in ' + fmtDur(runAt - now), title: 'runs at ' + fmtDateTime(runAt) };
  }
  const c = sortKey(rec);
  return { text: fmtDur(now - c), title: `waiting ${fmtDur(now - c)}` };
}

// ------------------------------------------------------------------ pages of jobs
function renderPager(shown) {
  const page = state.page;
  setText(els.pageLabel, page.ids ? `page ${page.n}` : 'live');
  els.pageNewer.disabled = !page.ids || page.loading;
  els.pageNewest.disabled = !page.ids || page.loading;
  els.pageOlder.disabled = page.loading || (page.ids ? !page.more : !shown);
  setAttr(els.jobsPanel, 'data-page', String(page.n));
}

/** Fetch the page of jobs older than `cursor` (an id): the rows after it, newest first. */
async function loadPage(cursor) {
  const page = state.page;
  page.loading = true;
  markDirty('jobs');
  try {
    const startIdx = eventMark();
    const r = await api(jobsQuery(LIMITS.list_limit.default, cursor));
    const list = (r && r.jobs) || [];
    mergeJobs(list, startIdx);
    page.ids = list.map((j) => String(j.id));
    page.more = r.next_cursor != null;
    return true;
  } catch (err) {
    toast(`jobs: ${err.message}`, 'error');
    return false;
  } finally {
    page.loading = false;
    markDirty('jobs');
  }
}

async function pageOlder() {
  const page = state.page;
  const cursor = page.ids ? page.ids[page.ids.length - 1] : state.oldestShown;
  if (!cursor || page.loading) return;
  if (await loadPage(cursor)) {
    page.cursors.push(cursor);
    page.n = page.cursors.length + 1;
  }
}

async function pageNewer() {
  const page = state.page;
  if (!page.ids || page.loading) return;
  page.cursors.pop();
  if (!page.cursors.length) {
    pageLive();
    return;
  }
  if (await loadPage(page.cursors[page.cursors.length - 1])) page.n = page.cursors.length + 1;
}

function pageLive() {
  state.page = livePage();
  markDirty('jobs');
}

// ------------------------------------------------------------------ bulk actions
export function renderBulk() {
  const { failed, waiting } = bulkCounts();
  setText(els.btnRetryFailed, failed ? `Retry all failed (${failed})` : 'Retry all failed');
  setText(els.btnPurgeWaiting, waiting ? `Purge waiting (${waiting})` : 'Purge waiting');
  els.btnRetryFailed.disabled = failed === 0;
  els.btnPurgeWaiting.disabled = waiting === 0;
}
