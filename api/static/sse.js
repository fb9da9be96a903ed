/* The live event stream (GET /events): one EventSource, reopened with backoff, each event into
 * the model. A reconnect resyncs from snapshots; a sequence that goes back (a broker on a
 * fresh store) forgets every job. Views that follow a job or a worker subscribe with
 * onJobChange and onWorkerChange. */
import { apiUrl, withToken } from './api.js';
import { noteServerTs } from './clock.js';
import { normError } from './format.js';
import { hooks } from './hooks.js';
import { EVENT, EVENT_TYPES, STATE, TERMINAL, TYPE_COUNTER, TYPE_STATUS } from './meta.js';
import { refreshSchedulesSoon, refreshWorkersSoon, resync } from './refresh.js';
import { markDirty } from './render.js';
import {
  applyDelta, applyJobEvent, eventMark, forgetJobs, getRec, logEvent, setQueueSettings, state,
} from './state.js';
import { onStats } from './stats.js';
import { bumpChart } from './throughput.js';
import { pushFeed, toast } from './views/feed.js';

const jobChanges = hooks();
const workerChanges = hooks();

/** `fn(type, rec, prevAttempts)` after each job event has been applied. */
export const onJobChange = jobChanges.add;

/** `fn(ev)` after each worker event has been applied. */
export const onWorkerChange = workerChanges.add;

let es = null;
let esTimer = null;
let esBackoffMs = 1000;

/** Every type but the job logs' (each line would be an event), by family: `job.,worker.,…`. */
function streamTypes() {
  const families = EVENT_TYPES.filter((t) => t !== EVENT.LOG).map((t) => t.split('.')[0] + '.');
  return [...new Set(families)].join(',');
}

export function connect() {
  clearTimeout(esTimer);
  esTimer = null;
  if (es) es.close();
  const source = new EventSource(withToken(apiUrl('events?types=' + streamTypes())));
  es = source;
  source.onopen = () => {
    if (es !== source) return;
    esBackoffMs = 1000;
    const reopened = state.everOpened;
    state.everOpened = true;
    setConnected(true, reopened);
    if (reopened) {
      // Whatever happened while away, the next snapshot is the new base.
      state.countsSeq = null;
      resync();
    }
  };
  source.onerror = () => {
    if (es !== source) return;
    setConnected(false);
    if (source.readyState === EventSource.CLOSED) {
      // The browser gave up (e.g. an HTTP error): retry ourselves with backoff.
      esTimer = setTimeout(connect, esBackoffMs);
      esBackoffMs = Math.min(esBackoffMs * 2, 30000);
    }
  };
  for (const t of EVENT_TYPES) source.addEventListener(t, onSse);
  source.addEventListener('message', onSse);
}

function setConnected(open, reopened = false) {
  const was = state.connected;
  state.connected = open;
  if (was && !open) pushFeed({ tone: STATE.FAILED, text: 'event stream lost, reconnecting…' });
  if (!was && open && reopened) pushFeed({ tone: STATE.SUCCEEDED, text: 'event stream reconnected' });
  markDirty('header');
}

function onSse(msg) {
  let ev;
  try {
    ev = JSON.parse(msg.data);
  } catch {
    return;
  }
  if (!ev || typeof ev !== 'object') return;
  if (!ev.type && msg.type && msg.type !== 'message') ev.type = msg.type;
  if (!ev.type) return;
  const seq = noteSeq(ev, msg);
  if (ev.ts != null) noteServerTs(ev.ts);
  const type = ev.type;
  if (type === EVENT.BROKER_STATS) {
    const body = ev.stats && typeof ev.stats === 'object' ? { seq: ev.seq, ...ev.stats } : ev;
    state.streamStatsAt = Date.now();
    state.streamStatsHasQueues = !!(body.queues && typeof body.queues === 'object');
    onStats(body, { seq, idx: eventMark() }, true);
  } else if (type.startsWith('job.')) {
    onJobEvent(ev, seq);
  } else if (type.startsWith('worker.')) {
    onWorkerEvent(ev);
  } else if (type === EVENT.QUEUE_UPDATED) {
    setQueueSettings(ev.queue, ev);
  } else if (type === EVENT.SCHEDULE_FIRED) {
    onScheduleFired(ev);
  }
  markDirty('header');
}

/** The event's seq (or null); a seq far behind the last one is a broker on a fresh store. */
function noteSeq(ev, msg) {
  let seq = ev.seq != null ? Number(ev.seq) : Number(msg.lastEventId);
  if (!Number.isFinite(seq)) return null;
  // Job and worker events come in strictly increasing seq order; a stats
  // snapshot may carry a slightly older seq, so it is not used for this.
  const last = state.lastEventSeq;
  if (ev.type !== EVENT.BROKER_STATS) {
    if (last != null && (seq + 50 < last || (seq < last && seq <= 10))) onSequenceReset();
    state.lastEventSeq = seq;
  }
  state.lastSeq = seq;
  return seq;
}

/**
 * The broker's sequence went backwards: a broker started on a fresh store.
 * Everything keyed by seq, and every job of the old store, is obsolete.
 */
function onSequenceReset() {
  forgetJobs();
  pushFeed({ tone: STATE.RUNNING, text: 'event sequence restarted (new broker store)' });
  resync();
}

function onJobEvent(ev, seq) {
  if (ev.job_id == null) return;
  const id = String(ev.job_id);
  ev.job_id = id;
  const type = ev.type;
  const existed = state.jobs.has(id);
  const rec = getRec(id);
  const prev = existed ? rec.status : null;
  const firstSubmit = type === EVENT.JOB_SUBMITTED && !rec._subSeen;
  const prevAttempts = rec.attempts;
  applyJobEvent(rec, ev);
  if (type === EVENT.JOB_SUBMITTED && !existed) rec._partial = false;
  const delta = countDelta(ev, rec, { prev, existed, firstSubmit });
  // An event already included in the counts snapshot must not be counted again.
  const inSnapshot = seq != null && state.countsSeq != null && seq <= state.countsSeq;
  if (delta && !inSnapshot) applyDelta(delta, { jobs: true, queues: true, counters: true });
  logEvent({ seq, ev, delta });

  if (type === EVENT.JOB_SUCCEEDED || type === EVENT.JOB_FAILED) bumpChart(ev.ts, type === EVENT.JOB_FAILED);
  trackWorkerRunning(type, rec, ev);
  feedForJobEvent(type, rec, ev);
  jobChanges.run(type, rec, prevAttempts);
  markDirty('jobs', 'counts', 'queues', 'chart', 'bulk');
}

/** How the event moves the counts: a job from one state to another, and a counter. */
function countDelta(ev, rec, { prev, existed, firstSubmit }) {
  const type = ev.type;
  const next = rec.status;
  let delta = null;
  const q = rec.queue || ev.queue || 'default';
  if (firstSubmit) delta = { q, from: null, to: next };
  else if (prev && prev !== next) delta = { q, from: prev, to: next };   // incl. a re-run's submit
  const counter = TYPE_COUNTER[type];
  // A repeated submit, or a terminal event for a job already in that state, is not counted twice.
  const duplicate = type === EVENT.JOB_SUBMITTED ? !firstSubmit : existed && prev === next && TERMINAL.has(next);
  if (counter && !duplicate) {
    delta = delta || { q, from: null, to: null };
    delta.counter = counter;
  }
  return delta;
}

function trackWorkerRunning(type, rec, ev) {
  if (type === EVENT.JOB_STARTED && ev.worker != null) {
    const w = state.workers.get(String(ev.worker));
    if (w) {
      w.running = Array.isArray(w.running) ? w.running : [];
      if (!w.running.includes(rec.id)) w.running.push(rec.id);
      markDirty('workers', 'header');
    }
  } else if (type === EVENT.JOB_RETRYING || TERMINAL.has(TYPE_STATUS[type])) {
    for (const w of state.workers.values()) {
      if (!Array.isArray(w.running)) continue;
      const i = w.running.indexOf(rec.id);
      if (i >= 0) {
        w.running.splice(i, 1);
        markDirty('workers', 'header');
      }
    }
  }
}

function feedForJobEvent(type, rec, ev) {
  const task = rec.task || 'job';
  if (type === EVENT.JOB_FAILED) {
    const err = normError(ev.error || rec.error);
    pushFeed({ tone: STATE.FAILED, jobId: rec.id, text: `${task} failed`, detail: err ? `${err.type || ''}: ${err.message || ''}` : '' });
  } else if (type === EVENT.JOB_RETRYING) {
    pushFeed({ tone: STATE.RUNNING, jobId: rec.id, text: `${task} retrying (attempt ${rec.attempts || '?'})` });
  } else if (type === EVENT.JOB_CANCELLED) {
    pushFeed({ tone: STATE.CANCELLED, jobId: rec.id, text: `${task} cancelled` });
  }
}

function onWorkerEvent(ev) {
  const name = ev.worker != null ? String(ev.worker) : null;
  if (!name) return;
  if (ev.type === EVENT.WORKER_JOINED) {
    const prev = state.workers.get(name) || {};
    state.workers.set(name, {
      running: [], processed: 0, failed: 0, tasks: [], ...prev,
      name,
      host: ev.host ?? prev.host,
      pid: ev.pid ?? prev.pid,
      queues: ev.queues ?? prev.queues ?? [],
      capacity: ev.capacity ?? prev.capacity ?? 0,
      last_seen_s: 0,
    });
    pushFeed({ tone: STATE.SUCCEEDED, text: `worker ${name} joined`, detail: ev.host ? `on ${ev.host}` : '' });
  } else if (ev.type === EVENT.WORKER_LOST || ev.type === EVENT.WORKER_LEFT) {
    state.workers.delete(name);
    const lost = ev.type === EVENT.WORKER_LOST;
    pushFeed({ tone: lost ? STATE.FAILED : STATE.CANCELLED, text: `worker ${name} ${lost ? 'lost' : 'left'}` });
    if (lost) toast(`Worker ${name} lost (missed heartbeats)`, 'warn');
  }
  markDirty('workers', 'header');
  refreshWorkersSoon();
  workerChanges.run(ev);
}

function onScheduleFired(ev) {
  const name = ev.name != null ? String(ev.name) : null;
  if (!name) return;
  state.firedAt.set(name, Date.now());
  const sc = state.schedules.get(name);
  if (sc && ev.slot != null) sc.last_run_at = Number(ev.slot);
  pushFeed({ tone: STATE.SCHEDULED, jobId: ev.job_id, text: `schedule ${name} fired` });
  markDirty('schedules');
  refreshSchedulesSoon();  // its next_run_at
}
