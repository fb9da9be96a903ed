/* The client-side model: jobs, counts, queues, workers, schedules, and what the page shows.
 *
 * REST snapshots (/stats, /workers, /queues, /jobs) seed it and the event stream keeps it
 * current. Consistency between the two: every job event is appended to a bounded local log.
 * A snapshot taken while events flow is merged, then the events that arrived after its
 * request was sent are replayed on top of it, so a slow response can never roll a job back to
 * an older state. Counter deltas are replayed the same way on top of /stats (keyed by its
 * `seq`).
 */
import { serverNow } from './clock.js';
import { normError, num, parseTime } from './format.js';
import { EVENT, STATE, STATES, TERMINAL, TYPE_STATUS } from './meta.js';
import { markDirty } from './render.js';

const MAX_TRACKED = 600;  // job records kept in memory (pruned above 2x)
const EVLOG_MAX = 40000;  // local job-event log used to replay over snapshots

export const state = {
  jobs: new Map(),              // id -> job record (REST fields + _c/_s/_f ms + flags)
  counts: {},                   // jobs per status
  queues: {},                   // queue -> counts
  counters: {},                 // broker counters
  workers: new Map(),           // name -> worker
  workersLoaded: false,
  statsWorkers: null,
  brokerTput: null,
  brokerTputSamples: [],        // [sec, value]
  uptimeS: null,
  uptimeAt: 0,
  lastSeq: null,
  lastEventSeq: null,
  streamStatsAt: 0,             // last broker.stats received on the stream
  streamStatsHasQueues: false,
  countsSeq: null,              // seq of the snapshot the counts are based on
  connected: false,
  everOpened: false,
  brokerUp: null,               // from /health: does the API reach the broker?
  brokerSince: null,            // epoch s of the last change of brokerUp
  staleSince: null,             // ms since when the live counts are not live
  loadedAt: Date.now(),
  jobsLoaded: false,            // the first GET /jobs has answered
  filter: { statuses: new Set(), queue: '', text: '' },
  // page 1 is the live list; an older page is a fixed list of ids from GET /jobs?cursor=
  page: livePage(),
  oldestShown: null,            // the last job of the live list shown: the cursor to page on
  historyEnd: null,             // seconds before this came from the broker's history
  schedules: new Map(),         // name -> schedule
  schedulesLoaded: false,
  firedAt: new Map(),           // schedule name -> ms it was last seen firing
  detailId: null,
  detailDependents: null,       // the dependents of the job shown, from GET /jobs?depends_on=
  workerId: null,               // the worker shown in the worker view
  workerJobs: null,             // its latest jobs, from GET /jobs?worker=
  workerGone: false,
  feed: [],
  chartWindowS: 300,
};

/** Page 1: the live list (an older page holds the ids GET /jobs gave for its cursor). */
export function livePage() {
  return { n: 1, ids: null, cursors: [], more: false, loading: false };
}

function zeroCounts() {
  const c = {};
  for (const s of STATES) c[s] = 0;
  return c;
}

function normCounts(obj) {
  const c = zeroCounts();
  if (obj && typeof obj === 'object') for (const s of STATES) c[s] = num(obj[s]);
  return c;
}

// ------------------------------------------------------------------ the job-event log
// Bounded log of job events: {idx, seq, ev, delta}. idx is local and gapless.
const evlog = [];
let evlogBase = 0;   // idx of evlog[0]
let evIdx = 0;       // idx of the next entry

/** The index the next job event gets: a snapshot requested now replays from it. */
export function eventMark() {
  return evIdx;
}

export function logEvent(entry) {
  entry.idx = evIdx++;
  entry.at = performance.now();
  evlog.push(entry);
  if (evlog.length > EVLOG_MAX) {
    const drop = evlog.length - EVLOG_MAX / 2;
    evlog.splice(0, drop);
    evlogBase += drop;
  }
}

/** A broker on a fresh store: every job and every seq known is obsolete. */
export function forgetJobs() {
  state.countsSeq = null;
  evlog.length = 0;
  evlogBase = evIdx;
  state.jobs.clear();
}

// ------------------------------------------------------------------ job records
export function newRec(id) {
  return {
    id, status: null, task: null, queue: null, kind: null, attempts: 0, worker: null,
    _c: null, _s: null, _f: null, _seen: serverNow(), _partial: true, _subSeen: false,
  };
}

export function getRec(id) {
  let rec = state.jobs.get(id);
  if (!rec) {
    rec = newRec(id);
    state.jobs.set(id, rec);
  }
  return rec;
}

function mergeRest(rec, j) {
  Object.assign(rec, j);
  if (!('unserved' in j)) delete rec.unserved;  // present only while it is true
  rec._c = parseTime(j.created_at) ?? rec._c;
  rec._s = 'started_at' in j ? parseTime(j.started_at) : rec._s;
  rec._f = 'finished_at' in j ? parseTime(j.finished_at) : rec._f;
  rec.error = normError(j.error);
  rec._partial = false;
  rec._full = true;
}

/** Apply one job event to a record (pure record update, no side effects). */
export function applyJobEvent(rec, ev) {
  const type = ev.type;
  const tsMs = Number.isFinite(Number(ev.ts)) ? Number(ev.ts) * 1000 : serverNow();
  if (ev.task != null) rec.task = ev.task;
  if (ev.queue != null) rec.queue = ev.queue;
  if (ev.kind != null) rec.kind = ev.kind;
  if (ev.attempts != null) rec.attempts = num(ev.attempts, rec.attempts);
  if (ev.priority != null) rec.priority = ev.priority;

  let status = TYPE_STATUS[type] || null;
  if (type === EVENT.JOB_SUBMITTED) {
    rec._subSeen = true;
    if (rec._c == null) rec._c = tsMs;
    if (ev.run_at != null && !ev.status) status = STATE.SCHEDULED;
  } else if (type === EVENT.JOB_STARTED) {
    if (ev.worker != null) rec.worker = ev.worker;
    rec._s = tsMs;
    rec._f = null;
    rec.progress = null;
  } else if (type === EVENT.JOB_PROGRESS) {
    rec.progress = { fraction: ev.fraction, message: ev.message };
    if (!TERMINAL.has(rec.status)) status = STATE.RUNNING;
  } else if (type === EVENT.JOB_RETRYING) {
    if (ev.error != null) rec.error = normError(ev.error);
  } else if (TERMINAL.has(status)) {
    endRec(rec, ev, tsMs);
  }
  if (ev.status && STATES.includes(ev.status)) status = ev.status;
  if (status) rec.status = status;
  if (rec._c == null) rec._c = rec._seen;
}

function endRec(rec, ev, tsMs) {
  rec._f = tsMs;
  if (ev.worker != null) rec.worker = ev.worker;
  if (ev.type === EVENT.JOB_FAILED && ev.error != null) rec.error = normError(ev.error);
  if (ev.type === EVENT.JOB_SUCCEEDED) {
    if ('result' in ev) rec.result = ev.result;
    if (rec.progress && rec.progress.fraction != null) rec.progress = { ...rec.progress, fraction: 1 };
  }
}

/** Merge a REST snapshot of jobs taken with the event log at `startIdx`. */
export function mergeJobs(list, startIdx) {
  const ids = new Set();
  for (const j of list || []) {
    if (!j || j.id == null) continue;
    const rec = getRec(String(j.id));
    const haveHistory = startIdx >= evlogBase;
    if (!haveHistory && rec.status && !rec._partial) {
      // Too old to replay safely: keep the event-driven status.
      const keep = { status: rec.status, attempts: rec.attempts, worker: rec.worker };
      mergeRest(rec, j);
      Object.assign(rec, keep);
    } else {
      mergeRest(rec, j);
    }
    ids.add(rec.id);
  }
  if (ids.size && startIdx >= evlogBase) {
    for (let i = startIdx - evlogBase; i < evlog.length; i++) {
      const ev = evlog[i].ev;
      if (ids.has(ev.job_id)) applyJobEvent(state.jobs.get(ev.job_id), ev);
    }
  }
  if (ids.has(state.detailId)) markDirty('detail');
  markDirty('jobs');
  return ids;
}

export function pruneJobs() {
  if (state.jobs.size <= MAX_TRACKED * 2) return;
  const recs = [...state.jobs.values()].sort(byNewest);
  const pinned = new Set(state.page.ids || []);
  for (const list of [state.detailDependents, state.workerJobs]) for (const id of list || []) pinned.add(id);
  for (let i = MAX_TRACKED; i < recs.length; i++) {
    if (recs[i].id !== state.detailId && !pinned.has(recs[i].id)) state.jobs.delete(recs[i].id);
  }
}

export function sortKey(rec) {
  return rec._c ?? rec._seen;
}

export function byNewest(a, b) {
  const d = sortKey(b) - sortKey(a);
  if (d) return d;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

// ------------------------------------------------------------------ counts
export function applyDelta(d, parts) {
  if (parts.jobs && d.from !== d.to) {
    if (d.from) state.counts[d.from] = (state.counts[d.from] || 0) - 1;
    if (d.to) state.counts[d.to] = (state.counts[d.to] || 0) + 1;
  }
  if (parts.queues && d.q && d.from !== d.to) {
    const q = state.queues[d.q] || (state.queues[d.q] = zeroCounts());
    if (d.from) q[d.from] -= 1;
    if (d.to) q[d.to] += 1;
  }
  if (parts.counters && d.counter) {
    state.counters[d.counter] = num(state.counters[d.counter]) + 1;
  }
}

/**
 * Replace counts with a snapshot, then re-apply the deltas of the events
 * that came after it: after `marker.seq` when the snapshot has one, else
 * after local event index `marker.idx` (when the request was sent).
 */
export function setCountsSnapshot({ jobs, queues, counters }, marker) {
  const parts = { jobs: !!jobs, queues: !!queues, counters: !!counters };
  if (jobs) state.counts = normCounts(jobs);
  if (queues) {
    const next = {};
    for (const [name, c] of Object.entries(queues)) {
      next[name] = normCounts(c);
      next[name].unserved = num(c.unserved);  // a level, not a count events move
      next[name].paused = !!c.paused;         // the queue's settings ride along
      next[name].rate_limit = c.rate_limit ?? null;
    }
    state.queues = next;
  }
  if (counters) state.counters = { ...counters };
  const after = [];
  const since = marker.t != null ? marker.t - 2000 : -Infinity;
  for (let i = evlog.length - 1; i >= 0; i--) {
    const e = evlog[i];
    // With a seq, an event is after the snapshot when its seq is larger; a REST
    // snapshot only misses events from shortly before its request, hence `since`.
    const isAfter = marker.seq != null && e.seq != null
      ? e.seq > marker.seq && e.at >= since
      : e.idx >= marker.idx;
    if (!isAfter) break;
    if (e.delta) after.push(e.delta);
  }
  for (let i = after.length - 1; i >= 0; i--) applyDelta(after[i], parts);
  markDirty('counts', 'queues', 'header', 'bulk');
}

/** A queue's settings changed (queue.updated, or our own PATCH's answer). */
export function setQueueSettings(name, settings) {
  if (name == null) return;
  const q = state.queues[name] || (state.queues[name] = zeroCounts());
  q.paused = !!settings.paused;
  q.rate_limit = settings.rate_limit ?? null;
  markDirty('queues');
}
