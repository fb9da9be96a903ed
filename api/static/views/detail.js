/* A job's view: its fields, progress, error or result, its dependencies and dependents as
 * links, why no live worker can run it (when none can), its log live, and Cancel / Retry. */
import { jobAction } from '../actions.js';
import { api } from '../api.js';
import { serverNow } from '../clock.js';
import { $, elements, setAttr, setText } from '../dom.js';
import { fmtDateTime, fmtDur, normError, num, parseTime, prettyJson, shortId } from '../format.js';
import { ACTIVE, EVENT, RETRYABLE, STATE, TERMINAL } from '../meta.js';
import { authProblem, onPoll, onResync } from '../refresh.js';
import { markDirty } from '../render.js';
import { onJobChange, onWorkerChange } from '../sse.js';
import { eventMark, mergeJobs, newRec, state } from '../state.js';
import { toast } from './feed.js';
import { renderFields, renderLinks } from './links.js';
import {
  closeLogStream, initLog, logEnded, newAttempt, openLogStream, resetLog,
} from './log.js';
import { closeWorker } from './workers.js';

const DEPENDENTS_SHOWN = 100;  // dependents listed (GET /jobs?depends_on=, one page)
const DEPENDENCIES_LOOKED_UP = 50;  // dependencies whose status is fetched for their badges
const els = {};
let refetchTimer = null;

export function initDetail() {
  Object.assign(els, elements({
    detail: '#job-detail', detailId: '#detail-id', detailTask: '#detail-task',
    detailStatus: '#detail-status', detailFields: '#detail-fields', detailError: '#detail-error',
    detailUnserved: '#detail-unserved', detailUnservedWhy: '#detail-unserved-why',
    detailUnservedFix: '#detail-unserved-fix', detailErrorType: '#detail-error-type',
    detailErrorMessage: '#detail-error-message', detailTraceback: '#detail-traceback',
    detailResultBlock: '#detail-result-block', detailResult: '#detail-result',
    detailArgs: '#detail-args', detailDeps: '#detail-deps', detailDependsOn: '#detail-depends-on',
    detailDependents: '#detail-dependents', progressBar: '#detail-progress-bar',
    progressPct: '#detail-progress-pct', progressMsg: '#detail-progress-msg',
    btnCancel: '#btn-cancel', btnRetry: '#btn-retry',
  }));
  initLog();
  $('#btn-close-detail').addEventListener('click', closeDetail);
  els.btnCancel.addEventListener('click', () => act('cancel', els.btnCancel));
  els.btnRetry.addEventListener('click', () => act('retry', els.btnRetry));
  $('#btn-copy-id').addEventListener('click', copyId);
  onResync(() => state.detailId && fetchDetail(state.detailId));
  onPoll(() => unservedShown() && fetchDetail(state.detailId));  // a worker may serve it now
  onJobChange(onJobEvent);
  onWorkerChange(() => unservedShown() && refetchDetailSoon());
}

export function isDetailOpen() {
  return !els.detail.hidden;
}

/** The job shown is one no live worker can run. */
function unservedShown() {
  const shown = state.detailId && state.jobs.get(state.detailId);
  return !!(shown && shown.unserved);
}

export function openDetail(id) {
  id = String(id);
  if (state.detailId === id && !els.detail.hidden) return;
  closeLogStream();
  if (state.workerId) closeWorker();
  state.detailId = id;
  state.detailDependents = null;
  markDirty('jobs');  // its row, selected
  els.detail.hidden = false;
  setText(els.detailId, id);
  resetLog();
  renderDetail();
  if (location.hash !== '#job=' + encodeURIComponent(id)) {
    history.replaceState(null, '', location.pathname + location.search + '#job=' + encodeURIComponent(id));
  }
  fetchDetail(id);
  followLog(id);
}

export function closeDetail() {
  closeLogStream();
  state.detailId = null;
  els.detail.hidden = true;
  markDirty('jobs');
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
}

/** The job's log from its first line, then live (again after a retry). */
function followLog(id) {
  openLogStream(id, () => state.detailId === id && refetchDetailSoon());
}

async function fetchDetail(id) {
  const startIdx = eventMark();
  try {
    const [j, dependents] = await Promise.all([
      api('jobs/' + encodeURIComponent(id)),
      api('jobs?' + new URLSearchParams({ depends_on: id, limit: String(DEPENDENTS_SHOWN) }).toString()),
    ]);
    if (j && j.id != null) mergeJobs([j], startIdx);
    const list = (dependents && dependents.jobs) || [];
    mergeJobs(list, startIdx);
    if (state.detailId === id) state.detailDependents = list.map((d) => String(d.id));
    await fetchDependencies(j, startIdx);
  } catch (err) {
    if (state.detailId !== id) return;
    if (err.status === 404) toast(`Job ${shortId(id)} not found`, 'error');
    else if (err.status === 401) authProblem();
    else toast(err.message, 'error');
  }
  if (state.detailId === id) markDirty('detail');
}

/** The dependencies' own status, for their badges. */
async function fetchDependencies(j, startIdx) {
  const unknown = (Array.isArray(j.depends_on) ? j.depends_on : []).map(String)
    .filter((d) => !state.jobs.has(d) || state.jobs.get(d)._partial).slice(0, DEPENDENCIES_LOOKED_UP);
  if (!unknown.length) return;
  const found = await Promise.all(
    unknown.map((d) => api('jobs/' + encodeURIComponent(d)).catch(() => null)));
  mergeJobs(found.filter(Boolean), startIdx);
}

function refetchDetailSoon() {
  clearTimeout(refetchTimer);
  const id = state.detailId;
  refetchTimer = setTimeout(() => {
    if (state.detailId === id) fetchDetail(id);
  }, 250);
}

function onJobEvent(type, rec, prevAttempts) {
  if (state.detailDependents && state.detailDependents.includes(rec.id)) markDirty('detail');
  if (rec.id !== state.detailId) return;
  markDirty('detail');
  if (TERMINAL.has(rec.status)) refetchDetailSoon();
  if (type !== EVENT.JOB_STARTED) return;
  if (num(rec.attempts) > 1 && num(rec.attempts) !== num(prevAttempts)) {
    newAttempt(`attempt ${rec.attempts} started${rec.worker ? ' on ' + rec.worker : ''}`);
  }
  if (logEnded()) {
    // The log stream had ended (e.g. before a retry): follow the new run; the
    // stream replays the job's log from its first line.
    resetLog();
    followLog(rec.id);
  }
}

async function act(action, btn) {
  const id = state.detailId;
  if (!id) return;
  btn.disabled = true;
  try {
    const j = await jobAction(id, action);
    if (j && action === 'retry' && state.detailId === id) {
      resetLog();
      followLog(id);
    }
  } finally {
    btn.disabled = false;
  }
}

async function copyId() {
  const id = state.detailId;
  if (!id) return;
  try {
    await navigator.clipboard.writeText(id);
    toast('Job id copied', 'ok', 2000);
  } catch {
    toast(id, 'info', 8000);
  }
}

// ------------------------------------------------------------------ rendering
export function renderDetail() {
  const id = state.detailId;
  if (!id) return;
  const rec = state.jobs.get(id) || newRec(id);
  const status = rec.status || STATE.QUEUED;
  setText(els.detailId, id);
  setText(els.detailTask, rec.task || rec.kind || '');
  setAttr(els.detailStatus, 'data-status', status);
  setText(els.detailStatus, rec.status || '…');
  els.detail.dataset.status = status;
  els.btnCancel.classList.toggle('muted', !ACTIVE.includes(status));
  els.btnRetry.classList.toggle('muted', !RETRYABLE.has(status));
  renderProgress(rec, status);
  renderFields(els.detailFields, fieldsOf(rec, status, serverNow()));
  renderUnserved(rec, status);
  renderOutcome(rec, status);

  // dependencies and dependents, as links
  const deps = Array.isArray(rec.depends_on) ? rec.depends_on.map(String) : [];
  const dependents = state.detailDependents || [];
  els.detailDeps.hidden = !deps.length && !dependents.length;
  if (!els.detailDeps.hidden) {
    renderLinks(els.detailDependsOn, deps, 'none');
    renderLinks(els.detailDependents, dependents, 'none');
  }

  const args = rec.args !== undefined || rec.kwargs !== undefined
    ? `args:   ${JSON.stringify(rec.args ?? [])}\nkwargs: ${JSON.stringify(rec.kwargs ?? {})}`
    : rec._full ? '–' : 'loading…';
  setText(els.detailArgs, args);
}

function renderProgress(rec, status) {
  const p = rec.progress;
  let frac = p && p.fraction != null ? Math.max(0, Math.min(1, num(p.fraction))) : null;
  if (frac === null && status === STATE.SUCCEEDED) frac = 1;
  els.progressBar.style.width = frac === null ? (TERMINAL.has(status) ? '100%' : '0%') : (frac * 100).toFixed(1) + '%';
  setAttr(els.progressBar, 'data-status', status);
  setText(els.progressPct, frac === null ? status : Math.round(frac * 100) + '%');
  setText(els.progressMsg, (p && p.message) || '');
}

function fieldsOf(rec, status, now) {
  const dur = rec._s != null ? (rec._f != null ? rec._f - rec._s : status === STATE.RUNNING ? now - rec._s : null) : null;
  const wait = rec._c != null && rec._s != null ? rec._s - rec._c : null;
  const maxRetries = rec.max_retries != null ? num(rec.max_retries) : null;
  return [
    ['Status', status],
    ['Queue', rec.queue || 'default'],
    ['Kind', rec.kind || 'task'],
    ['Task', rec.task || '–'],
    ['Priority', rec.priority ?? 0],
    ['Attempts', maxRetries != null ? `${num(rec.attempts)} of ${maxRetries + 1}` : num(rec.attempts)],
    ['Worker', rec.worker || '–'],
    ['Timeout', rec.timeout_s != null ? rec.timeout_s + ' s' : '–'],
    ['Run at', rec.run_at != null ? fmtDateTime(parseTime(rec.run_at)) : '–'],
    ['Created', rec._c != null ? fmtDateTime(rec._c) : '–'],
    ['Started', rec._s != null ? fmtDateTime(rec._s) : '–'],
    ['Finished', rec._f != null ? fmtDateTime(rec._f) : '–'],
    ['Waited', wait != null ? fmtDur(wait) : '–'],
    ['Duration', dur != null ? fmtDur(dur) : '–'],
    ['Age', rec._c != null ? fmtDur(now - rec._c) : '–'],
  ];
}

/** The error of a failed job, or the result of one that succeeded. */
function renderOutcome(rec, status) {
  const err = normError(rec.error);
  els.detailError.hidden = !err;
  if (err) {
    setText(els.detailErrorType, err.type || 'Error');
    setText(els.detailErrorMessage, err.message || '');
    setText(els.detailTraceback, err.traceback || '');
  }
  const hasResult = 'result' in rec && rec.result !== undefined && (rec.result !== null || status === STATE.SUCCEEDED);
  els.detailResultBlock.hidden = !hasResult;
  if (hasResult) setText(els.detailResult, prettyJson(rec.result));
}

/**
 * A queued job no live worker can run (`unserved` from GET /jobs/{id}): why, from the
 * workers the page knows, and the command that starts one that can.
 */
function renderUnserved(rec, status) {
  const shown = status === STATE.QUEUED && rec.unserved === true;
  els.detailUnserved.hidden = !shown;
  if (!shown) return;
  const queue = rec.queue || 'default';
  const serving = [...state.workers.values()].filter((w) => Array.isArray(w.queues) && w.queues.includes(queue));
  const flag = rec.kind === 'exec' ? '--allow-exec' : rec.kind === 'function' ? '--allow-pickle' : null;
  const who = serving.length === 1 ? `The one live worker of queue “${queue}” (${serving[0].name}) does not`
    : `None of the ${serving.length} live workers of queue “${queue}”`;
  let why;
  if (!serving.length) why = `No live worker serves queue “${queue}”.`;
  else if (flag) why = `${who} ${serving.length === 1 ? 'run' : 'runs'} ${rec.kind} jobs (that needs ${flag}).`;
  else why = `${who} ${serving.length === 1 ? 'have' : 'has'} the task “${rec.task}”.`;
  setText(els.detailUnservedWhy, why);
  const queues = queue === 'default' ? '' : ` --queues ${queue}`;
  setText(els.detailUnservedFix, flag ? `zjobs worker ${flag}${queues}` : `zjobs worker --tasks MODULE${queues}`);
  els.detailUnservedFix.title = flag ? '' : `MODULE: the module that defines ${rec.task} with @task`;
}
