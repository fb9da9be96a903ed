/* REST snapshots into the model: stats, health, workers, queues, jobs, schedules; `resync`
 * takes them all again, `poll` those the event stream does not keep current.
 *
 * The views that hold data of their own (a job's detail, a worker's view) join in with
 * onResync and onPoll, so that this module needs none of them. */
import { TOKEN, api, apiUrl } from './api.js';
import { hooks } from './hooks.js';
import { LIMITS, STATES, STATE } from './meta.js';
import { markDirty } from './render.js';
import { eventMark, mergeJobs, setCountsSnapshot, state } from './state.js';
import { onStats } from './stats.js';
import { pushFeed, toast } from './views/feed.js';

const resyncs = hooks();
const polls = hooks();

/** `fn` runs on every resync (a reconnect, a broker back) after the snapshots. */
export const onResync = resyncs.add;

/** `fn` runs on every poll, while the page is visible. */
export const onPoll = polls.add;

const inflight = new Set();

/** Run `fn` unless a run of `key` is in flight; a failure is logged (a 401 said once). */
async function once(key, fn) {
  if (inflight.has(key)) return;
  inflight.add(key);
  try {
    await fn();
  } catch (err) {
    if (err && err.status === 401) authProblem();
    else console.warn(key + ' refresh failed:', err && err.message);
  } finally {
    inflight.delete(key);
  }
}

let authWarned = false;

/** The API refused the token (or wants one): say so once, with what to do. */
export function authProblem() {
  if (authWarned) return;
  authWarned = true;
  toast(TOKEN ? 'The API rejected the token in ?token=' : 'The API needs a token: open this page with ?token=YOUR_TOKEN', 'error', 15000);
}

function refreshStats() {
  return once('stats', async () => {
    const marker = { idx: eventMark(), t: performance.now() };
    const s = await api('stats');
    onStats(s, marker);
  });
}

export function refreshHealth() {
  return once('health', async () => {
    let body = null;
    try {
      const res = await fetch(apiUrl('health'), { cache: 'no-store' });
      body = await res.json();
    } catch {
      body = null;  // the API itself is away: the event stream's state says so
    }
    const broker = body && body.broker;
    const up = !!(body && body.status === 'ok');
    const since = broker && typeof broker.since === 'number' ? broker.since : Date.now() / 1000;
    if (body && (up !== state.brokerUp || since !== state.brokerSince)) {
      if (state.brokerUp === true && !up) pushFeed({ tone: STATE.FAILED, text: 'broker unreachable' });
      if (state.brokerUp === false && up) {
        pushFeed({ tone: STATE.SUCCEEDED, text: 'broker reachable again' });
        resync();
      }
      state.brokerUp = up;
      state.brokerSince = since;
      markDirty('header');
    }
  });
}

function refreshWorkers() {
  return once('workers', async () => {
    const r = await api('workers');
    const list = Array.isArray(r) ? r : (r && r.workers) || [];
    const next = new Map();
    for (const w of list) if (w && w.name != null) next.set(String(w.name), w);
    state.workers = next;
    state.workersLoaded = true;
    markDirty('workers', 'header', 'queueOptions', 'taskOptions');
  });
}

/** `fn` run `ms` after a call, once for every call until then. */
function soon(fn, ms) {
  let timer = null;
  return () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      fn();
    }, ms);
  };
}

/** A worker came or went: the list again shortly (once for a burst of them). */
export const refreshWorkersSoon = soon(refreshWorkers, 600);

function refreshQueues() {
  return once('queues', async () => {
    const marker = { idx: eventMark(), t: performance.now() };
    const r = await api('queues');
    const queues = r && r.queues && typeof r.queues === 'object' ? r.queues : r;
    if (queues && typeof queues === 'object') setCountsSnapshot({ queues }, marker);
    markDirty('queueOptions');
  });
}

/** GET /jobs of the filter: a page of `limit` (the API's default page), from `cursor`. */
export function jobsQuery(limit = LIMITS.list_limit.default, cursor = null) {
  const qs = new URLSearchParams({ limit: String(limit) });
  for (const s of STATES) if (state.filter.statuses.has(s)) qs.append('status', s);
  if (state.filter.queue) qs.set('queue', state.filter.queue);
  if (cursor) qs.set('cursor', cursor);
  return 'jobs?' + qs.toString();
}

export function refreshJobs() {
  return once('jobs:' + jobsQuery(), async () => {
    const startIdx = eventMark();
    const r = await api(jobsQuery());
    const list = Array.isArray(r) ? r : (r && r.jobs) || [];
    mergeJobs(list, startIdx);
    state.jobsLoaded = true;
    markDirty('jobs');
  });
}

function refreshSchedules() {
  return once('schedules', async () => {
    const r = await api('schedules');
    const next = new Map();
    for (const sc of (r && r.schedules) || []) if (sc && sc.name != null) next.set(String(sc.name), sc);
    state.schedules = next;
    state.schedulesLoaded = true;
    markDirty('schedules');
  });
}

/** A schedule fired: the list again shortly, for its next run. */
export const refreshSchedulesSoon = soon(refreshSchedules, 300);

/** Every snapshot again: whatever happened while the page was away, they are the new base. */
export function resync() {
  refreshStats();
  refreshWorkers();
  refreshQueues();
  refreshJobs();
  refreshSchedules();
  resyncs.run();
}

/** What the event stream does not keep current (or everything, while it is down). */
export function poll() {
  if (document.hidden) return;
  refreshWorkers();
  refreshSchedules();
  polls.run();
  const streamStatsFresh = state.connected && Date.now() - state.streamStatsAt < 5000;
  // Queue depths ride on broker.stats (seq-consistent); /queues is the fallback.
  if (!streamStatsFresh || !state.streamStatsHasQueues) refreshQueues();
  if (!state.connected) {
    // The stream is down: keep the wall screen moving with plain polling.
    refreshStats();
    refreshJobs();
  } else if (!streamStatsFresh) {
    refreshStats();
  }
}
