/* zjobs live dashboard.
 *
 * Plain ES2020, no framework, no network beyond the zjobs API itself.
 *
 * Data flow: REST snapshots (/stats, /workers, /queues, /jobs) seed the state,
 * the SSE stream (/events) keeps it current, and a render loop throttled to
 * about 4 Hz writes the DOM. Event handlers only touch plain data and set dirty
 * flags, so a burst of thousands of events costs one render, not thousands.
 *
 * Consistency between snapshots and events: every job event is appended to a
 * bounded local log. A snapshot taken while events flow is merged, then the
 * events that arrived after the request was sent are replayed on top of it, so
 * a slow response can never roll a job back to an older state. Counter deltas
 * are replayed the same way on top of /stats (keyed by its `seq`).
 */
'use strict';

(() => {
  // ------------------------------------------------------------------ constants
  const STATUSES = ['deferred', 'scheduled', 'queued', 'running', 'succeeded', 'failed', 'cancelled'];
  const ACTIVE = new Set(['deferred', 'scheduled', 'queued', 'running']);
  const WAITING = ['deferred', 'scheduled', 'queued'];  // what a purge cancels
  const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
  const TYPE_STATUS = {
    'job.submitted': 'queued',
    'job.scheduled': 'scheduled',
    'job.queued': 'queued',          // a deferred job whose dependencies all succeeded
    'job.started': 'running',
    'job.retrying': 'queued',
    'job.succeeded': 'succeeded',
    'job.failed': 'failed',
    'job.cancelled': 'cancelled',
  };
  const TYPE_COUNTER = {
    'job.submitted': 'submitted',
    'job.retrying': 'retried',
    'job.succeeded': 'succeeded',
    'job.failed': 'failed',
    'job.cancelled': 'cancelled',
  };
  const EVENT_TYPES = [
    'job.submitted', 'job.scheduled', 'job.queued', 'job.started', 'job.progress', 'job.retrying',
    'job.succeeded', 'job.failed', 'job.cancelled',
    'worker.joined', 'worker.lost', 'worker.left', 'broker.stats', 'queue.updated',
    'schedule.fired',
  ];
  const STATUS_RGB = {
    deferred: '56,189,196',
    scheduled: '163,113,247',
    queued: '76,154,255',
    running: '245,165,36',
    succeeded: '47,191,113',
    failed: '240,82,90',
    cancelled: '139,148,158',
  };

  const RENDER_INTERVAL_MS = 250;   // ~4 Hz
  const POLL_INTERVAL_MS = 3000;    // /workers and /queues
  const HEALTH_INTERVAL_MS = 2000;  // /health: is the broker reachable?
  const MAX_ROWS = 200;             // rows in the jobs table
  const PAGE_SIZE = 50;             // rows of an older page (GET /jobs with a cursor)
  const MAX_TRACKED = 600;          // job records kept in memory (pruned above 2x)
  const EVLOG_MAX = 40000;          // local job-event log used to replay over snapshots
  const RING = 720;                 // seconds of throughput history kept
  const LOG_MAX_LINES = 5000;       // lines kept in the job log pane
  const FEED_MAX = 60;

  // ------------------------------------------------------------------ auth and URLs
  const params = new URLSearchParams(location.search);
  const TOKEN = params.get('token') || '';
  const BASE = location.pathname.replace(/static\/[^/]*$/, '').replace(/[^/]*$/, '');

  function apiUrl(path) {
    return BASE + String(path).replace(/^\/+/, '');
  }

  function withToken(url) {
    if (!TOKEN) return url;
    return url + (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(TOKEN);
  }

  class ApiError extends Error {
    constructor(message, status, code) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(path, { method = 'GET', body, raw = false } = {}) {
    const headers = { Accept: raw ? 'text/plain, */*' : 'application/json' };
    if (TOKEN) headers.Authorization = 'Bearer ' + TOKEN;
    let payload;
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(apiUrl(path), { method, headers, body: payload, cache: 'no-store' });
    } catch (err) {
      throw new ApiError('network error: ' + (err && err.message ? err.message : err), 0, 'network');
    }
    const text = await res.text();
    let data = text;
    if (text && (!raw || !res.ok)) {
      try { data = JSON.parse(text); } catch { data = text; }
    }
    if (!res.ok) {
      throw new ApiError(errorMessage(data, res), res.status, data && data.error && data.error.code);
    }
    return data;
  }

  function errorMessage(data, res) {
    if (data && typeof data === 'object') {
      const e = data.error;
      if (e && typeof e === 'object' && (e.message || e.code)) return String(e.message || e.code);
      if (typeof e === 'string') return e;
      if (data.detail) return typeof data.detail === 'string' ? data.detail : JSON.stringify(data.detail);
      if (data.message) return String(data.message);
    }
    if (typeof data === 'string' && data.trim() && data.length < 300) return data.trim();
    return `HTTP ${res.status} ${res.statusText || ''}`.trim();
  }

  // ------------------------------------------------------------------ small helpers
  const $ = (sel, root = document) => root.querySelector(sel);

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  function setText(node, text) {
    const s = String(text);
    if (node.textContent !== s) node.textContent = s;
  }

  function setAttr(node, name, value) {
    const s = String(value);
    if (node.getAttribute(name) !== s) node.setAttribute(name, s);
  }

  function num(v, d = 0) {
    const n = Number(v);
    return Number.isFinite(n) ? n : d;
  }

  function shortId(id) {
    const s = String(id || '');
    return s.length > 10 ? '…' + s.slice(-8) : s;
  }

  function fmtRate(v) {
    if (!Number.isFinite(v) || v <= 0) return '0';
    if (v < 10) return v.toFixed(1);
    return String(Math.round(v));
  }

  function fmtInt(v) {
    return Number.isFinite(v) ? String(Math.max(0, Math.round(v))) : '–';
  }

  /** A count in at most 6 characters, for a tile: 12345, then 123.5k, 1.235M, 12.35G. */
  function fmtCount(v) {
    if (!Number.isFinite(v)) return '–';
    v = Math.max(0, Math.round(v));
    if (v < 100000) return String(v);
    for (const [size, unit] of [[1e3, 'k'], [1e6, 'M'], [1e9, 'G'], [1e12, 'T']]) {
      const shown = Number((v / size).toPrecision(4));
      if (shown < 1000) return String(shown) + unit;
    }
    return v.toExponential(1);
  }

  function fmtDur(ms) {
    if (!Number.isFinite(ms)) return '–';
    if (ms < 0) ms = 0;
    if (ms < 1000) return Math.round(ms) + 'ms';
    const s = ms / 1000;
    if (s < 10) return s.toFixed(1) + 's';
    if (s < 60) return Math.floor(s) + 's';
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m ${String(Math.floor(s % 60)).padStart(2, '0')}s`;
    const h = Math.floor(m / 60);
    if (h < 24) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
    return `${Math.floor(h / 24)}d ${h % 24}h`;
  }

  function fmtClock(ms) {
    if (!Number.isFinite(ms)) return '–';
    const d = new Date(ms);
    const pad = (n) => String(n).padStart(2, '0');
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function fmtDateTime(ms) {
    if (!Number.isFinite(ms)) return '–';
    const d = new Date(ms);
    const pad = (n, w = 2) => String(n).padStart(w, '0');
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }

  /** ISO-8601 string or epoch seconds -> epoch ms (or null). */
  function parseTime(v) {
    if (v === null || v === undefined || v === '') return null;
    if (typeof v === 'number') return Number.isFinite(v) ? v * 1000 : null;
    let s = String(v);
    // A naive ISO string from the API is UTC.
    if (/^\d{4}-\d{2}-\d{2}T[\d:.]+$/.test(s)) s += 'Z';
    const t = Date.parse(s);
    return Number.isFinite(t) ? t : null;
  }

  function prettyJson(v) {
    try { return JSON.stringify(v, null, 2); } catch { return String(v); }
  }

  function normError(e) {
    if (e === null || e === undefined || e === '') return null;
    if (typeof e === 'string') return { type: 'Error', message: e, traceback: '' };
    if (typeof e === 'object') return e;
    return { type: 'Error', message: String(e), traceback: '' };
  }

  // Broker clock vs local clock. Events carry `ts` (broker epoch seconds); the
  // smallest (now - ts) seen is the skew plus the minimum delivery delay.
  let skewMs = null;
  function noteServerTs(tsSec) {
    const ts = Number(tsSec);
    if (!Number.isFinite(ts) || ts <= 0) return;
    const d = Date.now() - ts * 1000;
    if (skewMs === null || d < skewMs) skewMs = d;
    else if (d - skewMs < 2000) skewMs += (d - skewMs) * 0.01;
  }
  function serverNow() {
    return Date.now() - (skewMs || 0);
  }

  // ------------------------------------------------------------------ state
  const state = {
    jobs: new Map(),              // id -> job record (REST fields + _c/_s/_f ms + flags)
    counts: zeroCounts(),         // jobs per status
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
    streamStatsAt: 0,            // last broker.stats received on the stream
    streamStatsHasQueues: false,
    countsSeq: null,             // seq of the snapshot the counts are based on
    connected: false,
    everOpened: false,
    brokerUp: null,              // from /health: does the API reach the broker?
    brokerSince: null,           // epoch s of the last change of brokerUp
    staleSince: null,            // ms since when the live counts are not live
    loadedAt: Date.now(),
    filter: { statuses: new Set(), queue: '', text: '' },
    // page 1 is the live list; an older page is a fixed list of ids from GET /jobs?cursor=
    page: livePage(),
    historyEnd: null,             // seconds before this came from the broker's history
    schedules: new Map(),         // name -> schedule
    schedulesLoaded: false,
    firedAt: new Map(),           // schedule name -> ms it was last seen firing
    detailId: null,
    detailDependents: null,       // the dependents of the job shown, from GET /jobs?depends_on=
    workerId: null,               // the worker shown in the worker view
    workerJobs: null,             // its latest jobs, from GET /jobs?worker=
    feed: [],
    chartWindowS: 300,
  };

  /** Page 1: the live list (an older page holds the ids GET /jobs gave for its cursor). */
  function livePage() {
    return { n: 1, ids: null, cursors: [], more: false, loading: false };
  }

  function zeroCounts() {
    const c = {};
    for (const s of STATUSES) c[s] = 0;
    return c;
  }

  function normCounts(obj) {
    const c = zeroCounts();
    if (obj && typeof obj === 'object') for (const s of STATUSES) c[s] = num(obj[s]);
    return c;
  }

  // Bounded log of job events: {idx, seq, ev, delta}. idx is local and gapless.
  const evlog = [];
  let evlogBase = 0;   // idx of evlog[0]
  let evIdx = 0;       // idx of the next entry

  function logEvent(entry) {
    entry.idx = evIdx++;
    entry.at = performance.now();
    evlog.push(entry);
    if (evlog.length > EVLOG_MAX) {
      const drop = evlog.length - EVLOG_MAX / 2;
      evlog.splice(0, drop);
      evlogBase += drop;
    }
  }

  /**
   * The broker's sequence went backwards: a broker started on a fresh store.
   * Everything keyed by seq, and every job of the old store, is obsolete.
   */
  function onSequenceReset() {
    state.countsSeq = null;
    evlog.length = 0;
    evlogBase = evIdx;
    state.jobs.clear();
    pushFeed({ rgb: STATUS_RGB.running, text: 'event sequence restarted (new broker store)' });
    resync();
  }

  // ------------------------------------------------------------------ job records
  function newRec(id) {
    return {
      id, status: null, task: null, queue: null, kind: null, attempts: 0, worker: null,
      _c: null, _s: null, _f: null, _seen: serverNow(), _partial: true, _subSeen: false,
    };
  }

  function getRec(id) {
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
  function applyJobEvent(rec, ev) {
    const type = ev.type;
    const tsMs = Number.isFinite(Number(ev.ts)) ? Number(ev.ts) * 1000 : serverNow();
    if (ev.task != null) rec.task = ev.task;
    if (ev.queue != null) rec.queue = ev.queue;
    if (ev.kind != null) rec.kind = ev.kind;
    if (ev.attempts != null) rec.attempts = num(ev.attempts, rec.attempts);
    if (ev.priority != null) rec.priority = ev.priority;

    let status = TYPE_STATUS[type] || null;
    if (type === 'job.submitted') {
      rec._subSeen = true;
      if (rec._c == null) rec._c = tsMs;
      if (ev.run_at != null && !ev.status) status = 'scheduled';
    } else if (type === 'job.started') {
      if (ev.worker != null) rec.worker = ev.worker;
      rec._s = tsMs;
      rec._f = null;
      rec.progress = null;
    } else if (type === 'job.progress') {
      rec.progress = { fraction: ev.fraction, message: ev.message };
      if (!TERMINAL.has(rec.status)) status = 'running';
    } else if (type === 'job.retrying') {
      if (ev.error != null) rec.error = normError(ev.error);
    } else if (TERMINAL.has(status)) {
      rec._f = tsMs;
      if (ev.worker != null) rec.worker = ev.worker;
      if (type === 'job.failed' && ev.error != null) rec.error = normError(ev.error);
      if (type === 'job.succeeded') {
        if ('result' in ev) rec.result = ev.result;
        if (rec.progress && rec.progress.fraction != null) rec.progress = { ...rec.progress, fraction: 1 };
      }
    }
    if (ev.status && STATUSES.includes(ev.status)) status = ev.status;
    if (status) rec.status = status;
    if (rec._c == null) rec._c = rec._seen;
  }

  /** Merge a REST snapshot of jobs taken with the event log at `startIdx`. */
  function mergeJobs(list, startIdx) {
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

  function pruneJobs() {
    if (state.jobs.size <= MAX_TRACKED * 2) return;
    const recs = [...state.jobs.values()].sort(byNewest);
    const pinned = new Set(state.page.ids || []);
    for (const list of [state.detailDependents, state.workerJobs]) for (const id of list || []) pinned.add(id);
    for (let i = MAX_TRACKED; i < recs.length; i++) {
      if (recs[i].id !== state.detailId && !pinned.has(recs[i].id)) state.jobs.delete(recs[i].id);
    }
  }

  function sortKey(rec) {
    return rec._c ?? rec._seen;
  }

  function byNewest(a, b) {
    const d = sortKey(b) - sortKey(a);
    if (d) return d;
    return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
  }

  // ------------------------------------------------------------------ counters
  function applyDelta(d, parts) {
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
  function setCountsSnapshot({ jobs, queues, counters }, marker) {
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

  function onStats(s, marker, fromStream = false) {
    if (!s || typeof s !== 'object') return;
    if (s.history && typeof s.history === 'object') seedHistory(s.history);
    if (s.throughput_per_s != null) {
      state.brokerTput = num(s.throughput_per_s);
      const sec = Math.floor(serverNow() / 1000);
      const samples = state.brokerTputSamples;
      if (samples.length && samples[samples.length - 1][0] === sec) samples[samples.length - 1][1] = state.brokerTput;
      else samples.push([sec, state.brokerTput]);
      while (samples.length && samples[0][0] < sec - RING) samples.shift();
    }
    if (s.uptime_s != null) {
      state.uptimeS = num(s.uptime_s);
      state.uptimeAt = Date.now();
    }
    if (s.workers != null) state.statsWorkers = Array.isArray(s.workers) ? s.workers.length : num(s.workers);
    const seq = s.seq != null && Number.isFinite(Number(s.seq)) ? Number(s.seq) : null;
    if (seq != null && (state.lastSeq == null || seq > state.lastSeq)) state.lastSeq = seq;
    const parts = { jobs: s.jobs, queues: s.queues, counters: s.counters };
    // Counts never go back to an older snapshot than the one they are based on
    // (a stream lagging behind a REST snapshot would otherwise make them flicker).
    // The bound keeps a nonsensical seq from freezing them.
    const older = seq != null && state.countsSeq != null && seq < state.countsSeq &&
      state.countsSeq - seq < 1e6;
    if (older) {
      // Skip: the events after this snapshot are already in the counts.
    } else if (fromStream) {
      // In-stream snapshot: consistent with the events around it by construction.
      setCountsSnapshot(parts, { seq, idx: evIdx });
      state.countsSeq = seq;
    } else {
      // A REST snapshot may be ahead of the stream (events up to its seq will
      // still arrive: their deltas are skipped) or behind it (the deltas of the
      // events after it are re-applied).
      setCountsSnapshot(parts, seq != null ? { ...marker, seq } : marker);
      if (seq != null) state.countsSeq = seq;
    }
    markDirty('header', 'chart', 'queueOptions');
  }

  // ------------------------------------------------------------------ throughput ring
  const ringSec = new Float64Array(RING).fill(-1);
  const ringOk = new Uint32Array(RING);
  const ringFail = new Uint32Array(RING);

  function bumpChart(tsSec, failed) {
    const sec = Math.floor(Number.isFinite(Number(tsSec)) ? Number(tsSec) : serverNow() / 1000);
    const nowSec = Math.floor(serverNow() / 1000);
    if (sec <= nowSec - RING + 1) return;
    // counted by the broker, but for the second in progress: what ends in it from now on
    if (state.historyEnd != null && sec < state.historyEnd - 1) return;
    const i = ((sec % RING) + RING) % RING;
    if (ringSec[i] !== sec) {
      if (ringSec[i] > sec) return;
      ringSec[i] = sec;
      ringOk[i] = 0;
      ringFail[i] = 0;
    }
    if (failed) ringFail[i] += 1;
    else ringOk[i] += 1;
  }

  /** The broker's per-second history (GET /stats): the chart survives a reload. */
  function seedHistory(h) {
    const end = Math.floor(num(h.end));
    const n = Math.min(num(h.seconds), RING);
    const ok = Array.isArray(h.succeeded) ? h.succeeded : [];
    const fail = Array.isArray(h.failed) ? h.failed : [];
    const skip = ok.length - n;
    for (let k = 0; k < n; k++) {
      const sec = end - n + k;
      const i = ((sec % RING) + RING) % RING;
      ringSec[i] = sec;
      ringOk[i] = num(ok[skip + k]);
      ringFail[i] = num(fail[skip + k]);
    }
    state.historyEnd = end;
    markDirty('chart', 'counts');
  }

  function bucket(sec) {
    const i = ((sec % RING) + RING) % RING;
    return ringSec[i] === sec ? [ringOk[i], ringFail[i]] : [0, 0];
  }

  function rateOver(seconds) {
    const nowSec = Math.floor(serverNow() / 1000);
    let n = 0;
    for (let s = nowSec - seconds; s < nowSec; s++) {
      const [ok, fail] = bucket(s);
      n += ok + fail;
    }
    return n / seconds;
  }

  function finishedLast(seconds, which) {
    const nowSec = Math.floor(serverNow() / 1000);
    let n = 0;
    for (let s = nowSec - seconds; s <= nowSec; s++) n += bucket(s)[which];
    return n;
  }

  function throughputNow() {
    const sinceLoad = (Date.now() - state.loadedAt) / 1000;
    if (sinceLoad < 6 && state.brokerTput != null) return state.brokerTput;
    return rateOver(5);
  }

  // ------------------------------------------------------------------ dirty flags and render loop
  const dirty = new Set();
  let renderTimer = null;
  let lastRender = 0;

  function markDirty(...keys) {
    for (const k of keys) dirty.add(k);
    scheduleRender();
  }

  function scheduleRender() {
    if (renderTimer !== null) return;
    const wait = Math.max(0, RENDER_INTERVAL_MS - (performance.now() - lastRender));
    renderTimer = setTimeout(() => {
      const run = () => {
        renderTimer = null;
        lastRender = performance.now();
        render();
      };
      if (document.hidden) run();
      else requestAnimationFrame(run);
    }, wait);
  }

  // The chart goes first: setting a canvas font resolves styles, which is cheap
  // only while no DOM change of this frame is pending.
  const renderers = [
    ['chart', renderChart],
    ['header', renderHeader],
    ['counts', renderCounts],
    ['queues', renderQueues],
    ['queueOptions', renderQueueOptions],
    ['jobs', renderJobs],
    ['workers', renderWorkers],
    ['feed', renderFeed],
    ['detail', renderDetail],
    ['schedules', renderSchedules],
    ['worker', renderWorkerDetail],
    ['bulk', renderBulk],
  ];

  function render() {
    const todo = new Set(dirty);
    dirty.clear();
    for (const [key, fn] of renderers) {
      if (!todo.has(key)) continue;
      try {
        fn();
      } catch (err) {
        console.error('render ' + key + ' failed', err);
      }
    }
  }

  // ------------------------------------------------------------------ SSE
  let es = null;
  let esTimer = null;
  let esBackoffMs = 1000;

  function connect() {
    clearTimeout(esTimer);
    esTimer = null;
    if (es) es.close();
    const url = withToken(apiUrl('events?types=job.,worker.,broker.,queue.,schedule.'));
    const source = new EventSource(url);
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
    if (was && !open) pushFeed({ rgb: STATUS_RGB.failed, text: 'event stream lost, reconnecting…' });
    if (!was && open && reopened) pushFeed({ rgb: STATUS_RGB.succeeded, text: 'event stream reconnected' });
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
    let seq = ev.seq != null ? Number(ev.seq) : Number(msg.lastEventId);
    if (!Number.isFinite(seq)) seq = null;
    if (seq != null) {
      // Job and worker events come in strictly increasing seq order; a stats
      // snapshot may carry a slightly older seq, so it is not used for this.
      const last = state.lastEventSeq;
      if (ev.type !== 'broker.stats') {
        if (last != null && (seq + 50 < last || (seq < last && seq <= 10))) onSequenceReset();
        state.lastEventSeq = seq;
      }
      state.lastSeq = seq;
    }
    if (ev.ts != null) noteServerTs(ev.ts);
    const type = ev.type;
    if (type === 'broker.stats') {
      const body = ev.stats && typeof ev.stats === 'object' ? { seq: ev.seq, ...ev.stats } : ev;
      state.streamStatsAt = Date.now();
      state.streamStatsHasQueues = !!(body.queues && typeof body.queues === 'object');
      onStats(body, { seq, idx: evIdx }, true);
    } else if (type.startsWith('job.')) {
      onJobEvent(ev, seq);
    } else if (type.startsWith('worker.')) {
      onWorkerEvent(ev);
    } else if (type === 'queue.updated') {
      onQueueSettings(ev.queue, ev);
    } else if (type === 'schedule.fired') {
      onScheduleFired(ev);
    }
    markDirty('header');
  }

  function onJobEvent(ev, seq) {
    if (ev.job_id == null) return;
    const id = String(ev.job_id);
    ev.job_id = id;
    const type = ev.type;
    const existed = state.jobs.has(id);
    const rec = getRec(id);
    const prev = existed ? rec.status : null;
    const firstSubmit = type === 'job.submitted' && !rec._subSeen;
    const prevAttempts = rec.attempts;
    applyJobEvent(rec, ev);
    if (type === 'job.submitted' && !existed) rec._partial = false;
    const next = rec.status;

    let delta = null;
    const q = rec.queue || ev.queue || 'default';
    if (firstSubmit) delta = { q, from: null, to: next };
    else if (prev && prev !== next) delta = { q, from: prev, to: next };   // incl. a re-run's submit
    const counter = TYPE_COUNTER[type];
    // A repeated submit, or a terminal event for a job already in that state, is not counted twice.
    const duplicate = type === 'job.submitted' ? !firstSubmit : existed && prev === next && TERMINAL.has(next);
    if (counter && !duplicate) {
      delta = delta || { q, from: null, to: null };
      delta.counter = counter;
    }
    // An event already included in the counts snapshot must not be counted again.
    const inSnapshot = seq != null && state.countsSeq != null && seq <= state.countsSeq;
    if (delta && !inSnapshot) applyDelta(delta, { jobs: true, queues: true, counters: true });
    logEvent({ seq, ev, delta });

    if (type === 'job.succeeded' || type === 'job.failed') bumpChart(ev.ts, type === 'job.failed');
    trackWorkerRunning(type, rec, ev);
    feedForJobEvent(type, rec, ev);

    if (id === state.detailId) onDetailJobEvent(type, rec, prevAttempts);
    markDirty('jobs', 'counts', 'queues', 'chart', 'bulk');
    if (state.workerId) markDirty('worker');
    if (state.detailId && state.detailDependents && state.detailDependents.includes(id)) markDirty('detail');
  }

  function trackWorkerRunning(type, rec, ev) {
    if (type === 'job.started' && ev.worker != null) {
      const w = state.workers.get(String(ev.worker));
      if (w) {
        w.running = Array.isArray(w.running) ? w.running : [];
        if (!w.running.includes(rec.id)) w.running.push(rec.id);
        markDirty('workers', 'header');
      }
    } else if (type === 'job.retrying' || TERMINAL.has(TYPE_STATUS[type])) {
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
    if (type === 'job.failed') {
      const err = normError(ev.error || rec.error);
      pushFeed({ rgb: STATUS_RGB.failed, jobId: rec.id, text: `${rec.task || 'job'} failed`, detail: err ? `${err.type || ''}: ${err.message || ''}` : '' });
    } else if (type === 'job.retrying') {
      pushFeed({ rgb: STATUS_RGB.running, jobId: rec.id, text: `${rec.task || 'job'} retrying (attempt ${rec.attempts || '?'})` });
    } else if (type === 'job.cancelled') {
      pushFeed({ rgb: STATUS_RGB.cancelled, jobId: rec.id, text: `${rec.task || 'job'} cancelled` });
    }
  }

  function onWorkerEvent(ev) {
    const name = ev.worker != null ? String(ev.worker) : null;
    if (!name) return;
    if (ev.type === 'worker.joined') {
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
      pushFeed({ rgb: STATUS_RGB.succeeded, text: `worker ${name} joined`, detail: ev.host ? `on ${ev.host}` : '' });
    } else if (ev.type === 'worker.lost' || ev.type === 'worker.left') {
      state.workers.delete(name);
      const lost = ev.type === 'worker.lost';
      pushFeed({ rgb: lost ? STATUS_RGB.failed : STATUS_RGB.cancelled, text: `worker ${name} ${lost ? 'lost' : 'left'}` });
      if (lost) toast(`Worker ${name} lost (missed heartbeats)`, 'warn');
    }
    markDirty('workers', 'header');
    refreshWorkersSoon();
    const shown = state.detailId && state.jobs.get(state.detailId);
    if (shown && shown.unserved) refetchDetailSoon();
  }

  // ------------------------------------------------------------------ REST refreshes
  const inflight = new Set();

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
  function authProblem() {
    if (authWarned) return;
    authWarned = true;
    toast(TOKEN ? 'The API rejected the token in ?token=' : 'The API needs a token: open this page with ?token=YOUR_TOKEN', 'error', 15000);
  }

  function refreshStats() {
    return once('stats', async () => {
      const marker = { idx: evIdx, t: performance.now() };
      const s = await api('stats');
      onStats(s, marker);
    });
  }

  function refreshHealth() {
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
        if (state.brokerUp === true && !up) pushFeed({ rgb: STATUS_RGB.failed, text: 'broker unreachable' });
        if (state.brokerUp === false && up) {
          pushFeed({ rgb: STATUS_RGB.succeeded, text: 'broker reachable again' });
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
      markDirty('workers', 'header', 'queueOptions');
      renderTaskOptions();
    });
  }

  let workersSoonTimer = null;
  function refreshWorkersSoon() {
    if (workersSoonTimer) return;
    workersSoonTimer = setTimeout(() => {
      workersSoonTimer = null;
      refreshWorkers();
    }, 600);
  }

  function refreshQueues() {
    return once('queues', async () => {
      const marker = { idx: evIdx, t: performance.now() };
      const r = await api('queues');
      const queues = r && r.queues && typeof r.queues === 'object' ? r.queues : r;
      if (queues && typeof queues === 'object') setCountsSnapshot({ queues }, marker);
      markDirty('queueOptions');
    });
  }

  function jobsQuery(limit = 50, cursor = null) {
    const qs = new URLSearchParams({ limit: String(limit) });
    for (const s of STATUSES) if (state.filter.statuses.has(s)) qs.append('status', s);
    if (state.filter.queue) qs.set('queue', state.filter.queue);
    if (cursor) qs.set('cursor', cursor);
    return 'jobs?' + qs.toString();
  }

  function refreshJobs() {
    return once('jobs:' + jobsQuery(), async () => {
      const startIdx = evIdx;
      const r = await api(jobsQuery());
      const list = Array.isArray(r) ? r : (r && r.jobs) || [];
      mergeJobs(list, startIdx);
      jobsLoaded = true;
      markDirty('jobs');
    });
  }
  let jobsLoaded = false;

  function resync() {
    refreshStats();
    refreshWorkers();
    refreshQueues();
    refreshJobs();
    refreshSchedules();
    if (state.detailId) fetchDetail(state.detailId);
    if (state.workerId) fetchWorker(state.workerId);
  }

  function poll() {
    if (document.hidden) return;
    refreshWorkers();
    const shown = state.detailId && state.jobs.get(state.detailId);
    if (shown && shown.unserved) fetchDetail(state.detailId);  // a worker may serve it now
    refreshSchedules();
    if (state.workerId) fetchWorker(state.workerId);
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

  // ------------------------------------------------------------------ rendering: header and counters
  const els = {};

  function renderHeader() {
    const conn = els.conn;
    const brokerDown = state.brokerUp === false;
    const live = state.connected && !brokerDown;
    setAttr(conn, 'data-state', live ? 'open' : 'closed');
    setAttr(conn, 'data-broker', brokerDown ? 'down' : state.brokerUp ? 'up' : 'unknown');
    setAttr(document.body, 'data-conn', live ? 'open' : 'closed');
    renderStale(brokerDown);
    setText(els.connLabel, brokerDown
      ? 'Broker unreachable since ' + fmtClock(state.brokerSince * 1000)
      : state.connected ? 'Live' : state.everOpened ? 'Reconnecting…' : 'Connecting…');

    const nWorkers = state.workersLoaded ? state.workers.size : state.statsWorkers;
    setText(els.workersCount, nWorkers == null ? '–' : String(nWorkers));
    let cap = 0;
    let busy = 0;
    for (const w of state.workers.values()) {
      cap += num(w.capacity);
      busy += Array.isArray(w.running) ? w.running.length : num(w.running);
    }
    setText(els.slotsUsed, state.workersLoaded ? `${busy} / ${cap}` : '–');
    setText(els.throughputNow, fmtRate(throughputNow()));
    if (state.uptimeS != null) setText(els.uptime, fmtDur((state.uptimeS * 1000) + (Date.now() - state.uptimeAt)));
    setText(els.lastSeq, state.lastSeq == null ? '–' : String(state.lastSeq));
    setText(els.clock, fmtClock(Date.now()));
  }

  /**
   * While the broker is down (or the event stream lost), the live counts are the last ones
   * known: greyed and marked "stale, as of HH:MM:SS" rather than shown as if current.
   */
  function renderStale(brokerDown) {
    const stale = brokerDown || (state.everOpened && !state.connected);
    if (!stale) state.staleSince = null;
    else if (state.staleSince == null) {
      state.staleSince = brokerDown && state.brokerSince ? state.brokerSince * 1000 : Date.now();
    }
    const label = stale ? 'stale · as of ' + fmtClock(state.staleSince) : '';
    for (const node of els.staleable) {
      if (stale) {
        setAttr(node, 'data-stale', label);
        node.title = 'Not live: the broker is not reachable. These are the last values seen, ' +
          'as of ' + fmtClock(state.staleSince) + '.';
      } else if (node.hasAttribute('data-stale')) {
        node.removeAttribute('data-stale');
        node.title = '';
      }
    }
  }

  function renderCounts() {
    for (const s of STATUSES) {
      const node = els.count[s];
      const v = Math.max(0, Math.round(state.counts[s] || 0));
      if (node.dataset.value !== String(v)) {
        node.textContent = fmtCount(v);
        node.dataset.value = String(v);
        node.title = `${v.toLocaleString('en')} ${s}`;
      }
    }
    const nq = Object.keys(state.queues).length;
    setText(els.sub.queued, nq ? `across ${nq} queue${nq === 1 ? '' : 's'}` : 'waiting');
    let cap = 0;
    for (const w of state.workers.values()) cap += num(w.capacity);
    setText(els.sub.running, cap ? `of ${cap} slots` : 'in progress');
    setText(els.sub.succeeded, `+${finishedLast(60, 0)} last min`);
    setText(els.sub.failed, `+${finishedLast(60, 1)} last min`);
    for (const [key, node] of Object.entries(els.counterStrip)) {
      const v = state.counters[key];
      setText(node, v == null ? '–' : fmtInt(num(v)));
    }
  }

  // ------------------------------------------------------------------ rendering: queues
  const queueRows = new Map();

  function renderQueues() {
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
    for (const n of names) {
      const c = state.queues[n];
      maxActive = Math.max(maxActive, pos(c.deferred) + pos(c.scheduled) + pos(c.queued) + pos(c.running));
    }
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

  function pos(v) {
    return Math.max(0, num(v));
  }

  /** A queue's settings changed (queue.updated, or our own PATCH's answer). */
  function onQueueSettings(name, settings) {
    if (name == null) return;
    const q = state.queues[name] || (state.queues[name] = zeroCounts());
    q.paused = !!settings.paused;
    q.rate_limit = settings.rate_limit ?? null;
    markDirty('queues');
  }

  async function queueAction(name, action) {
    const path = 'queues/' + encodeURIComponent(name);
    try {
      if (action === 'purge') {
        if (!window.confirm(`Cancel every waiting job of queue "${name}"? Running jobs go on.`)) return;
        const r = await api(path + '/purge', { method: 'POST' });
        toast(`queue ${name}: ${r.cancelled} cancelled`);
        return;
      }
      const r = await api(path, { method: 'PATCH', body: { paused: action === 'pause' } });
      onQueueSettings(name, r);
    } catch (err) {
      toast(`queue ${name}: ${err.message}`, 'error');
    }
  }

  function makeQueueControls(name) {
    const box = el('div', 'queue-controls');
    const limit = el('span', 'queue-limit');
    const pause = el('button', 'btn btn-small queue-pause', 'Pause');
    pause.type = 'button';
    pause.addEventListener('click', () =>
      queueAction(name, pause.dataset.paused === 'true' ? 'resume' : 'pause'));
    const purge = el('button', 'btn btn-small btn-danger queue-purge', 'Purge');
    purge.type = 'button';
    purge.title = 'cancel every queued, scheduled or deferred job of this queue';
    purge.addEventListener('click', () => queueAction(name, 'purge'));
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
    const depth = el('div', 'queue-depth');
    const depthNum = el('span', null, '0');
    depth.append(depthNum, el('small', null, 'active'));
    const bar = el('div', 'queue-bar');
    const seg = {};
    for (const s of ['running', 'queued', 'scheduled', 'deferred']) {
      seg[s] = el('span', 'qb-' + s);
      bar.append(seg[s]);
    }
    const meta = el('div', 'queue-meta');
    const metaVals = {};
    for (const s of STATUSES) {
      const span = el('span', 'm-' + s);
      const b = el('b', null, '0');
      span.append(b, document.createTextNode(' ' + s));
      metaVals[s] = b;
      meta.append(span);
    }
    const unserved = el('div', 'queue-unserved');
    unserved.hidden = true;
    const controls = makeQueueControls(name);
    root.append(title, depth, bar, meta, unserved, controls.box);
    return { root, depthNum, seg, metaVals, unserved, controls };
  }

  function updateQueueRow(row, c, maxActive) {
    const active = pos(c.deferred) + pos(c.scheduled) + pos(c.queued) + pos(c.running);
    setText(row.depthNum, String(active));
    for (const s of ['running', 'queued', 'scheduled', 'deferred']) {
      const w = (pos(c[s]) / maxActive) * 100;
      const style = w.toFixed(2) + '%';
      if (row.seg[s].style.width !== style) row.seg[s].style.width = style;
      row.seg[s].title = `${s}: ${pos(c[s])}`;
    }
    for (const s of STATUSES) setText(row.metaVals[s], String(Math.round(pos(c[s]))));
    // queued jobs no live worker can run (their task, or the exec/pickle flag, is served nowhere)
    const unserved = Math.round(pos(c.unserved));
    row.unserved.hidden = unserved === 0;
    setAttr(row.root, 'data-unserved', String(unserved));
    setText(row.unserved, unserved ? `${unserved} waiting for a worker that can run them` : '');
    updateQueueControls(row, c);
  }

  function renderQueueOptions() {
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

  function renderTaskOptions() {
    const tasks = new Set(['echo', 'add', 'sleep', 'fail', 'countdown']);
    for (const w of state.workers.values()) for (const t of w.tasks || []) tasks.add(String(t));
    const sorted = [...tasks].sort();
    const key = sorted.join('\u0000');
    if (els.taskNames.dataset.key === key) return;
    els.taskNames.dataset.key = key;
    els.taskNames.replaceChildren(...sorted.map((n) => new Option(n)));
  }

  // ------------------------------------------------------------------ rendering: jobs table
  const jobRows = new Map();   // id -> row cache

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

  function renderJobs() {
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
      if (tbody.children[i] !== row.tr) tbody.insertBefore(row.tr, tbody.children[i] || null);
    }
    for (const [id, row] of jobRows) {
      if (!keep.has(id)) {
        row.tr.remove();
        jobRows.delete(id);
      }
    }
    els.jobsEmpty.hidden = shown.length > 0;
    if (!shown.length) {
      setText(els.jobsEmpty, page.ids ? 'No older jobs.' : state.filter.statuses.size || state.filter.queue || state.filter.text
        ? 'No job matches the filter.'
        : jobsLoaded ? 'No jobs yet: submit one with the form.' : 'Loading…');
    }
    setText(els.jobsCount, list.length > shown.length ? `showing ${shown.length} of ${list.length}` : `${shown.length}`);
  }

  function makeJobRow(id) {
    const tr = document.createElement('tr');
    tr.dataset.jobId = id;
    tr.tabIndex = 0;
    const td = (cls) => {
      const c = el('td', cls);
      tr.append(c);
      return c;
    };
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
    if (id === state.detailId) tr.classList.add('selected');
    return { tr, task, queue, badge, mini, miniBar, att, worker, time, sig: '' };
  }

  /** Update a row in place; only the cells whose values changed are written. */
  function updateJobRow(row, rec, now) {
    const status = rec.status || 'queued';
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
      const showProgress = status === 'running' && frac !== null;
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
    if (status === 'running' && rec._s != null) {
      return { text: '▶ ' + fmtDur(now - rec._s), title: `running for ${fmtDur(now - rec._s)}` };
    }
    if (status === 'scheduled') {
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
      const startIdx = evIdx;
      const r = await api(jobsQuery(PAGE_SIZE, cursor));
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
  /** The queues a bulk action applies to: the one filtered on, or every queue. */
  function bulkQueues() {
    return state.filter.queue ? [state.filter.queue] : Object.keys(state.queues);
  }

  function countIn(queues, statuses) {
    let n = 0;
    for (const q of queues) for (const s of statuses) n += pos((state.queues[q] || {})[s]);
    return Math.round(n);
  }

  async function retryAllFailed() {
    const queue = state.filter.queue || null;
    const n = countIn(bulkQueues(), ['failed']);
    const where = queue ? ` of queue "${queue}"` : '';
    if (!window.confirm(`Run all ${n} failed job${n === 1 ? '' : 's'}${where} again?`)) return;
    try {
      const r = await api('jobs/retry', { method: 'POST', body: { status: ['failed'], queue } });
      toast(`${r.retried} failed job${r.retried === 1 ? '' : 's'} queued again`, 'ok');
      refreshJobs();
    } catch (err) {
      toast(`retry all failed: ${err.message}`, 'error');
    }
  }

  async function purgeWaiting() {
    const queues = bulkQueues();
    const n = countIn(queues, WAITING);
    const where = state.filter.queue ? `queue "${state.filter.queue}"` : `all ${queues.length} queues`;
    if (!window.confirm(`Cancel all ${n} waiting (queued, scheduled or deferred) jobs of ${where}? Running jobs go on.`)) return;
    let cancelled = 0;
    try {
      for (const q of queues) {
        const r = await api('queues/' + encodeURIComponent(q) + '/purge', { method: 'POST' });
        cancelled += num(r.cancelled);
      }
      toast(`${cancelled} waiting job${cancelled === 1 ? '' : 's'} cancelled`, 'ok');
    } catch (err) {
      toast(`purge: ${err.message}`, 'error');
    }
  }

  function renderBulk() {
    const queues = bulkQueues();
    const failed = countIn(queues, ['failed']);
    const waiting = countIn(queues, WAITING);
    setText(els.btnRetryFailed, failed ? `Retry all failed (${failed})` : 'Retry all failed');
    setText(els.btnPurgeWaiting, waiting ? `Purge waiting (${waiting})` : 'Purge waiting');
    els.btnRetryFailed.disabled = failed === 0;
    els.btnPurgeWaiting.disabled = waiting === 0;
  }

  // ------------------------------------------------------------------ schedules
  const scheduleRows = new Map();

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

  let schedulesSoonTimer = null;
  function onScheduleFired(ev) {
    const name = ev.name != null ? String(ev.name) : null;
    if (!name) return;
    state.firedAt.set(name, Date.now());
    const sc = state.schedules.get(name);
    if (sc && ev.slot != null) sc.last_run_at = Number(ev.slot);
    pushFeed({ rgb: STATUS_RGB.scheduled, jobId: ev.job_id, text: `schedule ${name} fired` });
    markDirty('schedules');
    if (!schedulesSoonTimer) {
      schedulesSoonTimer = setTimeout(() => {
        schedulesSoonTimer = null;
        refreshSchedules();  // its next_run_at
      }, 300);
    }
  }

  async function removeSchedule(name) {
    if (!window.confirm(`Remove schedule "${name}"? Jobs it already submitted go on.`)) return;
    try {
      await api('schedules/' + encodeURIComponent(name), { method: 'DELETE', raw: true });
      state.schedules.delete(name);
      toast(`schedule ${name} removed`, 'ok');
    } catch (err) {
      toast(`schedule ${name}: ${err.message}`, 'error');
    }
    markDirty('schedules');
  }

  function scheduleWhen(sc) {
    if (sc.cron) return sc.cron;
    const e = num(sc.every_s);
    return e ? `every ${e < 60 ? e + ' s' : fmtDur(e * 1000)}` : '–';
  }

  function relTime(ms, now) {
    if (ms == null) return '–';
    const d = ms - now;
    return d >= 0 ? 'in ' + fmtDur(d) : fmtDur(-d) + ' ago';
  }

  function renderSchedules() {
    const names = [...state.schedules.keys()].sort();
    const tbody = els.schedulesBody;
    const now = serverNow();
    names.forEach((name, i) => {
      let row = scheduleRows.get(name);
      if (!row) {
        row = makeScheduleRow(name);
        scheduleRows.set(name, row);
      }
      const sc = state.schedules.get(name);
      setText(row.when, scheduleWhen(sc));
      setText(row.task, sc.task || '–');
      row.task.title = `${sc.task}(${JSON.stringify(sc.args ?? []).slice(1, -1)}) on queue ${sc.queue || 'default'}`;
      const nextMs = parseTime(sc.next_run_at);
      const lastMs = parseTime(sc.last_run_at);
      setText(row.next, relTime(nextMs, now));
      row.next.title = nextMs != null ? fmtDateTime(nextMs) : '';
      setText(row.last, lastMs != null ? relTime(lastMs, now) : 'never');
      row.last.title = lastMs != null ? fmtDateTime(lastMs) : '';
      setAttr(row.tr, 'data-last-run', lastMs != null ? String(lastMs) : '');
      const fired = state.firedAt.get(name);
      row.tr.classList.toggle('fired', fired != null && Date.now() - fired < 1500);
      if (tbody.children[i] !== row.tr) tbody.insertBefore(row.tr, tbody.children[i] || null);
    });
    for (const [name, row] of scheduleRows) {
      if (!state.schedules.has(name)) {
        row.tr.remove();
        scheduleRows.delete(name);
      }
    }
    els.schedulesEmpty.hidden = names.length > 0 || !state.schedulesLoaded;
    setText(els.schedulesSummary, names.length ? String(names.length) : '');
  }

  function makeScheduleRow(name) {
    const tr = document.createElement('tr');
    tr.dataset.schedule = name;
    const cell = (cls, text) => {
      const c = el('td', cls, text);
      tr.append(c);
      return c;
    };
    cell('s-name', name).title = name;
    const when = cell('s-when');
    const task = cell('s-task');
    const next = cell('s-next');
    const last = cell('s-last');
    const actions = cell('s-actions');
    const remove = el('button', 'btn btn-small btn-danger schedule-remove', 'Remove');
    remove.type = 'button';
    remove.addEventListener('click', () => removeSchedule(name));
    actions.append(remove);
    return { tr, when, task, next, last };
  }

  // ------------------------------------------------------------------ links to jobs
  /** A list item linking to a job (opens its detail), with its status when known. */
  function jobLink(id, rec) {
    const li = el('li');
    li.dataset.jobId = id;
    const a = el('a');
    a.href = '#job=' + encodeURIComponent(id);
    a.append(el('code', null, shortId(id)));
    a.title = id;
    const status = rec && rec.status;
    const badge = el('span', 'badge', status || '…');
    if (status) badge.dataset.status = status;
    li.append(a, badge);
    if (rec && rec.task) li.append(el('span', 'dep-task', rec.task));
    return li;
  }

  function renderLinks(ul, ids, noneText) {
    const recs = ids.map((id) => state.jobs.get(id));
    const key = ids.map((id, i) => `${id}:${recs[i] ? recs[i].status : ''}`).join(',');
    if (ul.dataset.key === key) return;
    ul.dataset.key = key;
    if (!ids.length) {
      ul.replaceChildren(el('li', 'none', noneText));
      return;
    }
    ul.replaceChildren(...ids.map((id, i) => jobLink(id, recs[i])));
  }

  // ------------------------------------------------------------------ worker view
  async function fetchWorker(name) {
    const startIdx = evIdx;
    try {
      const [w, page] = await Promise.all([
        api('workers/' + encodeURIComponent(name)).catch((err) => {
          if (err.status === 404) return null;
          throw err;
        }),
        api('jobs?' + new URLSearchParams({ worker: name, limit: '20' }).toString()),
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

  function openWorker(name) {
    name = String(name);
    state.workerId = name;
    state.workerJobs = null;
    state.workerGone = false;
    els.workerDetail.hidden = false;
    setText(els.workerDetailName, name);
    renderWorkerDetail();
    fetchWorker(name);
  }

  function closeWorker() {
    state.workerId = null;
    state.workerJobs = null;
    els.workerDetail.hidden = true;
  }

  function renderWorkerDetail() {
    const name = state.workerId;
    if (!name) return;
    const w = state.workers.get(name) || {};
    const gone = state.workerGone;
    setText(els.workerDetailHost, w.host != null ? `${w.host}${w.pid != null ? ' · pid ' + w.pid : ''}` : '');
    setAttr(els.workerDetailState, 'data-status', gone ? 'cancelled' : 'succeeded');
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

  // ------------------------------------------------------------------ rendering: workers
  const workerRows = new Map();

  function renderWorkers() {
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
      busy += Array.isArray(w.running) ? w.running.length : num(w.running);
      done += num(w.processed);
    }
    setText(els.workersSummary, names.length ? `${busy}/${cap} slots busy · ${done} processed` : '');
  }

  function makeWorkerRow(name) {
    const tr = document.createElement('tr');
    tr.dataset.worker = name;
    const td = (cls) => {
      const c = el('td', cls);
      tr.append(c);
      return c;
    };
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
    const running = Array.isArray(w.running) ? w.running.length : num(w.running);
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

  // ------------------------------------------------------------------ rendering: chart
  let chartHover = null;   // x in CSS px, or null

  /** A round tick step (1, 2, 2.5, 5 x 10^k), at least 1, with at most ~4 ticks up to `max`. */
  function yScale(max) {
    const raw = Math.max(max, 1) / 4;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    let step = 10 * p;
    for (const m of [1, 2, 2.5, 5]) {
      if (m * p >= raw) {
        step = m * p;
        break;
      }
    }
    step = Math.max(1, step);
    const ticks = Math.max(1, Math.ceil(max / step - 1e-9));
    return { step, ticks, yMax: step * ticks };
  }

  function renderChart() {
    const canvas = els.chart;
    // The size comes from the ResizeObserver: reading clientWidth here would force
    // a synchronous layout right after the tables were updated.
    if (!chartSize) chartSize = { w: canvas.clientWidth, h: canvas.clientHeight };
    const { w, h } = chartSize;
    if (!w || !h) return;
    const dpr = window.devicePixelRatio || 1;
    const pw = Math.round(w * dpr);
    const ph = Math.round(h * dpr);
    if (canvas.width !== pw || canvas.height !== ph) {
      canvas.width = pw;
      canvas.height = ph;
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);

    const span = state.chartWindowS;
    const nowSec = Math.floor(serverNow() / 1000);
    const start = nowSec - span;   // buckets [start, nowSec - 1]; the current second is still filling
    const ok = new Array(span);
    const fail = new Array(span);
    let max = 0;
    let total = 0;
    let totalFail = 0;
    let peak = 0;
    for (let i = 0; i < span; i++) {
      const [a, b] = bucket(start + i);
      ok[i] = a;
      fail[i] = b;
      total += a + b;
      totalFail += b;
      peak = Math.max(peak, a + b);
    }
    max = peak;
    const avg = movingAverage(ok, fail, 10);
    const broker = state.brokerTputSamples.filter(([s]) => s >= start && s < nowSec);
    for (const [, v] of broker) max = Math.max(max, v);
    const { step, ticks, yMax } = yScale(max);

    const padL = 44;
    const padR = 12;
    const padT = 10;
    const padB = 24;
    const plotW = w - padL - padR;
    const plotH = h - padT - padB;
    const x = (i) => padL + (i / span) * plotW;
    const y = (v) => padT + plotH - (v / yMax) * plotH;

    // grid and y labels
    ctx.font = chartFont();
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'right';
    for (let k = 0; k <= ticks; k++) {
      const v = step * k;
      const yy = Math.round(y(v)) + 0.5;
      ctx.strokeStyle = k === 0 ? 'rgba(131,145,167,0.45)' : 'rgba(131,145,167,0.14)';
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(padL, yy);
      ctx.lineTo(w - padR, yy);
      ctx.stroke();
      ctx.fillStyle = '#8391a7';
      ctx.fillText(Number.isInteger(v) ? String(v) : v.toFixed(1), padL - 8, yy);
    }
    // x labels every minute
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    const stepS = span <= 300 ? 60 : 120;
    for (let s = 0; s <= span; s += stepS) {
      const xx = x(span - s);
      ctx.fillStyle = '#5b687c';
      ctx.fillText(s === 0 ? 'now' : `-${s / 60}m`, Math.min(Math.max(xx, padL + 12), w - padR - 12), padT + plotH + 6);
      if (s > 0) {
        ctx.strokeStyle = 'rgba(131,145,167,0.07)';
        ctx.beginPath();
        ctx.moveTo(Math.round(xx) + 0.5, padT);
        ctx.lineTo(Math.round(xx) + 0.5, padT + plotH);
        ctx.stroke();
      }
    }

    // bars: succeeded with failed stacked on top
    const bw = plotW / span;
    const gap = bw > 3 ? 1 : 0;
    for (let i = 0; i < span; i++) {
      const a = ok[i];
      const b = fail[i];
      if (!a && !b) continue;
      const x0 = x(i);
      if (a) {
        ctx.fillStyle = 'rgba(47,191,113,0.85)';
        ctx.fillRect(x0, y(a), Math.max(bw - gap, 0.75), y(0) - y(a));
      }
      if (b) {
        ctx.fillStyle = 'rgba(240,82,90,0.95)';
        ctx.fillRect(x0, y(a + b), Math.max(bw - gap, 0.75), y(a) - y(a + b));
      }
    }

    // broker-reported throughput (dashed)
    if (broker.length > 1) {
      ctx.save();
      ctx.setLineDash([5, 4]);
      ctx.strokeStyle = 'rgba(99,199,255,0.8)';
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      broker.forEach(([s, v], k) => {
        const xx = x(s - start + 0.5);
        if (k) ctx.lineTo(xx, y(v));
        else ctx.moveTo(xx, y(v));
      });
      ctx.stroke();
      ctx.restore();
    }

    // moving average line
    if (total > 0) {
      ctx.strokeStyle = 'rgba(233,238,246,0.95)';
      ctx.lineWidth = 2;
      ctx.lineJoin = 'round';
      ctx.beginPath();
      for (let i = 0; i < span; i++) {
        const xx = x(i + 0.5);
        if (i) ctx.lineTo(xx, y(avg[i]));
        else ctx.moveTo(xx, y(avg[i]));
      }
      ctx.stroke();
    } else {
      ctx.fillStyle = '#5b687c';
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.fillText('Waiting for jobs to finish…', padL + plotW / 2, padT + plotH / 2);
    }

    // hover
    if (chartHover !== null && chartHover >= padL && chartHover <= w - padR) {
      const i = Math.min(span - 1, Math.max(0, Math.floor(((chartHover - padL) / plotW) * span)));
      const xx = x(i + 0.5);
      ctx.strokeStyle = 'rgba(255,255,255,0.35)';
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(xx, padT);
      ctx.lineTo(xx, padT + plotH);
      ctx.stroke();
      const t = (start + i) * 1000;
      els.chartTip.hidden = false;
      els.chartTip.replaceChildren(
        el('div', null, fmtClock(t + (skewMs || 0))),
        tipLine('finished', ok[i] + fail[i]),
        tipLine('failed', fail[i]),
        tipLine('10 s avg', fmtRate(avg[i])),
      );
      const tipW = els.chartTip.offsetWidth;
      els.chartTip.style.left = Math.min(Math.max(xx + 12, 0), w - tipW - 4) + 'px';
    } else {
      els.chartTip.hidden = true;
    }

    // stats below the chart
    setText(els.tpNow, fmtRate(rateOver(5)));
    setText(els.tp1m, fmtRate(rateOver(60)));
    setText(els.tpPeak, fmtRate(peak));
    setText(els.tpTotal, String(total));
    setText(els.tpFailrate, total ? ((totalFail / total) * 100).toFixed(1) + '%' : '–');
  }

  let chartFontCache = null;
  let chartSize = null;
  function chartFont() {
    // Computed once per resize: getComputedStyle in the render loop forces a style recalc.
    if (!chartFontCache) {
      const rootPx = parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
      chartFontCache = `${Math.max(10, Math.round(rootPx * 0.72))}px ${getComputedStyle(document.body).fontFamily}`;
    }
    return chartFontCache;
  }

  function tipLine(label, value) {
    const d = el('div', null, label + ' ');
    d.append(el('b', null, String(value)));
    return d;
  }

  function movingAverage(ok, fail, n) {
    const out = new Array(ok.length);
    let sum = 0;
    for (let i = 0; i < ok.length; i++) {
      sum += ok[i] + fail[i];
      if (i >= n) sum -= ok[i - n] + fail[i - n];
      out[i] = sum / Math.min(n, i + 1);
    }
    return out;
  }

  // ------------------------------------------------------------------ activity feed
  function pushFeed(item) {
    item.at = Date.now();
    state.feed.push(item);
    if (state.feed.length > FEED_MAX * 4) state.feed.splice(0, state.feed.length - FEED_MAX);
    markDirty('feed');
  }

  function renderFeed() {
    const items = state.feed.slice(-FEED_MAX).reverse();
    if (!items.length) return;
    const lis = items.map((it) => {
      const li = el('li');
      if (it.jobId) li.dataset.jobId = it.jobId;
      const dot = el('span', 'a-dot');
      dot.style.setProperty('--rgb', it.rgb || '131,145,167');
      const text = el('span', 'a-text');
      text.append(document.createTextNode(it.text));
      if (it.jobId) {
        text.append(document.createTextNode(' '));
        text.append(el('code', null, shortId(it.jobId)));
      }
      if (it.detail) text.append(document.createTextNode(' · ' + it.detail));
      text.title = text.textContent;
      li.append(el('time', null, fmtClock(it.at)), dot, text);
      return li;
    });
    els.activity.replaceChildren(...lis);
  }

  // ------------------------------------------------------------------ toasts
  function toast(message, kind = 'info', ms = 5000) {
    const t = el('div', 'toast ' + kind);
    t.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    if (kind === 'error') t.append(el('b', null, 'Error'));
    t.append(document.createTextNode(message));
    t.addEventListener('click', () => t.remove());
    els.toasts.append(t);
    while (els.toasts.children.length > 5) els.toasts.firstElementChild.remove();
    setTimeout(() => t.remove(), ms);
    return t;
  }

  // ------------------------------------------------------------------ job detail
  const detail = {
    es: null,
    logLines: 0,
    seen: new Set(),
    reconnecting: false,
    ended: false,
    pending: [],
    flushScheduled: false,
    refetchTimer: null,
    errors: 0,
  };

  function openDetail(id) {
    id = String(id);
    if (state.detailId === id && !els.detail.hidden) return;
    closeLogStream();
    if (state.workerId) closeWorker();
    state.detailId = id;
    state.detailDependents = null;
    for (const row of jobRows.values()) row.tr.classList.toggle('selected', row.tr.dataset.jobId === id);
    els.detail.hidden = false;
    setText(els.detailId, id);
    resetLog();
    renderDetail();
    if (location.hash !== '#job=' + encodeURIComponent(id)) {
      history.replaceState(null, '', location.pathname + location.search + '#job=' + encodeURIComponent(id));
    }
    fetchDetail(id);
    openLogStream(id);
  }

  function closeDetail() {
    closeLogStream();
    state.detailId = null;
    els.detail.hidden = true;
    for (const row of jobRows.values()) row.tr.classList.remove('selected');
    if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  }

  async function fetchDetail(id) {
    const startIdx = evIdx;
    try {
      const [j, dependents] = await Promise.all([
        api('jobs/' + encodeURIComponent(id)),
        api('jobs?' + new URLSearchParams({ depends_on: id, limit: '100' }).toString()),
      ]);
      if (j && j.id != null) mergeJobs([j], startIdx);
      const list = (dependents && dependents.jobs) || [];
      mergeJobs(list, startIdx);
      if (state.detailId === id) state.detailDependents = list.map((d) => String(d.id));
      // the dependencies' own status, for their badges
      const unknown = (Array.isArray(j.depends_on) ? j.depends_on : []).map(String)
        .filter((d) => !state.jobs.has(d) || state.jobs.get(d)._partial).slice(0, 50);
      if (unknown.length) {
        const found = await Promise.all(
          unknown.map((d) => api('jobs/' + encodeURIComponent(d)).catch(() => null)));
        mergeJobs(found.filter(Boolean), startIdx);
      }
    } catch (err) {
      if (state.detailId !== id) return;
      if (err.status === 404) toast(`Job ${shortId(id)} not found`, 'error');
      else if (err.status === 401) authProblem();
      else toast(err.message, 'error');
    }
    if (state.detailId === id) markDirty('detail');
  }

  function refetchDetailSoon() {
    clearTimeout(detail.refetchTimer);
    const id = state.detailId;
    detail.refetchTimer = setTimeout(() => {
      if (state.detailId === id) fetchDetail(id);
    }, 250);
  }

  function onDetailJobEvent(type, rec, prevAttempts) {
    markDirty('detail');
    if (TERMINAL.has(rec.status)) refetchDetailSoon();
    if (type === 'job.started' && num(rec.attempts) > 1 && num(rec.attempts) !== num(prevAttempts)) {
      // A new attempt: its log lines may be numbered from 1 again.
      detail.seen.clear();
      appendLogSep(`attempt ${rec.attempts} started${rec.worker ? ' on ' + rec.worker : ''}`);
    }
    if (type === 'job.started' && detail.ended) {
      // The log stream had ended (e.g. before a retry): follow the new run; the
      // stream replays the job's log from its first line.
      resetLog();
      openLogStream(rec.id);
    }
  }

  function renderDetail() {
    const id = state.detailId;
    if (!id) return;
    const rec = state.jobs.get(id) || newRec(id);
    const status = rec.status || 'queued';
    const now = serverNow();
    setText(els.detailId, id);
    setText(els.detailTask, rec.task || rec.kind || '');
    setAttr(els.detailStatus, 'data-status', status);
    setText(els.detailStatus, rec.status || '…');
    els.detail.dataset.status = status;

    els.btnCancel.classList.toggle('muted', !ACTIVE.has(status));
    els.btnRetry.classList.toggle('muted', !(status === 'failed' || status === 'cancelled'));

    // progress
    const p = rec.progress;
    let frac = p && p.fraction != null ? Math.max(0, Math.min(1, num(p.fraction))) : null;
    if (frac === null && status === 'succeeded') frac = 1;
    els.progressBar.style.width = frac === null ? (TERMINAL.has(status) ? '100%' : '0%') : (frac * 100).toFixed(1) + '%';
    setAttr(els.progressBar, 'data-status', status);
    setText(els.progressPct, frac === null ? (status === 'running' ? 'running' : status) : Math.round(frac * 100) + '%');
    setText(els.progressMsg, (p && p.message) || '');

    // fields
    const dur = rec._s != null ? (rec._f != null ? rec._f - rec._s : status === 'running' ? now - rec._s : null) : null;
    const wait = rec._c != null && rec._s != null ? rec._s - rec._c : null;
    const maxRetries = rec.max_retries != null ? num(rec.max_retries) : null;
    const fields = [
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
    renderFields(els.detailFields, fields);

    renderUnserved(rec, status);

    // error
    const err = normError(rec.error);
    els.detailError.hidden = !err;
    if (err) {
      setText(els.detailErrorType, err.type || 'Error');
      setText(els.detailErrorMessage, err.message || '');
      setText(els.detailTraceback, err.traceback || '');
    }

    // result
    const hasResult = 'result' in rec && rec.result !== undefined && (rec.result !== null || status === 'succeeded');
    els.detailResultBlock.hidden = !hasResult;
    if (hasResult) setText(els.detailResult, prettyJson(rec.result));

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

  /**
   * A queued job no live worker can run (`unserved` from GET /jobs/{id}): why, from the
   * workers the page knows, and the command that starts one that can.
   */
  function renderUnserved(rec, status) {
    const shown = status === 'queued' && rec.unserved === true;
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

  /** A `<dl>` of [label, value] pairs, rebuilt only when a value changed. */
  function renderFields(dl, fields) {
    const key = JSON.stringify(fields);
    if (dl.dataset.key === key) return;
    dl.dataset.key = key;
    dl.replaceChildren(...fields.map(([k, v]) => {
      const d = el('div');
      d.dataset.field = k.toLowerCase().replace(/\s+/g, '_');
      const dd = el('dd', null, String(v));
      dd.title = String(v);
      d.append(el('dt', null, k), dd);
      return d;
    }));
  }

  async function jobAction(action) {
    const id = state.detailId;
    if (!id) return;
    const btn = action === 'cancel' ? els.btnCancel : els.btnRetry;
    btn.disabled = true;
    const startIdx = evIdx;
    try {
      const j = await api(`jobs/${encodeURIComponent(id)}/${action}`, { method: 'POST' });
      if (j && j.id != null) mergeJobs([j], startIdx);
      toast(action === 'cancel' ? `Cancel requested for ${shortId(id)}` : `Job ${shortId(id)} queued again`, 'ok');
      if (action === 'retry' && state.detailId === id) {
        resetLog();
        openLogStream(id);
      }
    } catch (err) {
      if (err.status === 401) authProblem();
      toast(err.message, 'error');
    } finally {
      btn.disabled = false;
      markDirty('detail', 'jobs');
    }
  }

  // ---- live log
  function resetLog() {
    detail.logLines = 0;
    detail.seen.clear();
    detail.pending = [];
    els.log.replaceChildren(el('div', 'log-empty', 'No output yet.'));
    setText(els.logState, '');
  }

  function closeLogStream() {
    if (detail.es) {
      detail.es.close();
      detail.es = null;
    }
  }

  function openLogStream(id) {
    closeLogStream();
    detail.ended = false;
    detail.reconnecting = false;
    detail.errors = 0;
    setText(els.logState, 'connecting…');
    const source = new EventSource(withToken(apiUrl(`jobs/${encodeURIComponent(id)}/logs/stream`)));
    detail.es = source;
    source.onopen = () => {
      if (detail.es !== source) return;
      setText(els.logState, 'live');
    };
    source.addEventListener('log', (msg) => {
      if (detail.es !== source) return;
      let d;
      try { d = JSON.parse(msg.data); } catch { return; }
      if (!d || typeof d !== 'object') return;
      const stream = d.stream === 'stderr' ? 'stderr' : 'stdout';
      const key = `${stream}:${d.line}`;
      if (d.line != null) {
        // After a reconnect the server may replay lines we already show.
        if (detail.seen.has(key)) return;
        detail.seen.add(key);
      }
      queueLogLine({ stream, line: d.line, data: d.data == null ? '' : String(d.data) });
    });
    source.addEventListener('end', (msg) => {
      if (detail.es !== source) return;
      let d = {};
      try { d = JSON.parse(msg.data) || {}; } catch { /* keep {} */ }
      detail.ended = true;
      source.close();
      detail.es = null;
      flushLog();
      appendLogSep(`— job ${d.status || 'ended'} —`, d.status ? 'end-' + d.status : '');
      setText(els.logState, 'ended');
      if (state.detailId === id) refetchDetailSoon();
    });
    source.onerror = () => {
      if (detail.es !== source) return;
      detail.errors += 1;
      const rec = state.jobs.get(id);
      const terminal = rec && TERMINAL.has(rec.status);
      if (source.readyState === EventSource.CLOSED || (terminal && detail.errors >= 2)) {
        source.close();
        detail.es = null;
        setText(els.logState, 'stream unavailable');
        if (!detail.logLines) loadLogSnapshot(id);
      } else {
        setText(els.logState, 'reconnecting…');
      }
    };
  }

  async function loadLogSnapshot(id) {
    try {
      const text = await api(`jobs/${encodeURIComponent(id)}/logs`, { raw: true });
      if (state.detailId !== id || detail.logLines || typeof text !== 'string' || !text) return;
      text.replace(/\n$/, '').split('\n').forEach((line, i) => queueLogLine({ stream: 'stdout', line: i + 1, data: line }));
      setText(els.logState, 'snapshot');
    } catch {
      /* no log endpoint or no log: leave the pane as it is */
    }
  }

  function queueLogLine(line) {
    detail.pending.push(line);
    if (detail.flushScheduled) return;
    detail.flushScheduled = true;
    requestAnimationFrame(flushLog);
  }

  function flushLog() {
    detail.flushScheduled = false;
    const lines = detail.pending;
    if (!lines.length) return;
    detail.pending = [];
    const box = els.log;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    if (!detail.logLines) box.replaceChildren();
    const frag = document.createDocumentFragment();
    const from = Math.max(0, lines.length - LOG_MAX_LINES);
    for (let i = from; i < lines.length; i++) {
      const l = lines[i];
      const row = el('div', 'll ' + l.stream);
      if (l.line != null) row.dataset.line = String(l.line);
      row.dataset.stream = l.stream;
      row.append(el('span', 'ln', l.line != null ? String(l.line) : ''), el('span', 'tx', l.data));
      frag.append(row);
    }
    box.append(frag);
    detail.logLines += lines.length - from;
    while (box.childElementCount > LOG_MAX_LINES) box.firstElementChild.remove();
    if (els.logFollow.checked || atBottom) box.scrollTop = box.scrollHeight;
  }

  function appendLogSep(text, cls = '') {
    flushLog();
    const box = els.log;
    if (!detail.logLines) box.replaceChildren();
    detail.logLines += 1;
    box.append(el('div', 'sep ' + cls, text));
    if (els.logFollow.checked) box.scrollTop = box.scrollHeight;
  }

  // ------------------------------------------------------------------ submit form
  async function onSubmit(e) {
    e.preventDefault();
    const task = els.submitTask.value.trim();
    if (!task) {
      els.submitTask.classList.add('invalid');
      toast('Task name is required', 'error');
      return;
    }
    els.submitTask.classList.remove('invalid');
    const args = parseJsonField(els.submitArgs, [], Array.isArray, 'Args must be a JSON array, e.g. [1, 2]');
    if (args === undefined) return;
    const kwargs = parseJsonField(els.submitKwargs, null, (v) => v && typeof v === 'object' && !Array.isArray(v), 'Kwargs must be a JSON object, e.g. {"n": 3}');
    if (kwargs === undefined) return;
    const job = { task, args };
    if (kwargs && Object.keys(kwargs).length) job.kwargs = kwargs;
    const queue = els.submitQueue.value.trim();
    if (queue) job.queue = queue;
    const prio = Number(els.submitPriority.value);
    if (els.submitPriority.value !== '' && Number.isFinite(prio)) job.priority = Math.trunc(prio);
    const count = Math.min(10000, Math.max(1, Math.trunc(num(els.submitCount.value, 1)) || 1));
    const body = count === 1 ? job : { jobs: Array.from({ length: count }, () => ({ ...job })) };

    els.btnSubmit.disabled = true;
    const startIdx = evIdx;
    try {
      const r = await api('jobs', { method: 'POST', body });
      const jobs = r && Array.isArray(r.jobs) ? r.jobs : r ? [r] : [];
      mergeJobs(jobs, startIdx);
      if (count === 1 && jobs[0]) toast(`Submitted ${task} · ${shortId(jobs[0].id)}`, 'ok', 3000);
      else toast(`Submitted ${jobs.length || count} × ${task}`, 'ok', 3000);
    } catch (err) {
      if (err.status === 401) authProblem();
      toast(err.message, 'error');
    } finally {
      els.btnSubmit.disabled = false;
    }
  }

  /** Returns the parsed value, `fallback` for an empty field, or undefined when invalid. */
  function parseJsonField(input, fallback, valid, message) {
    const raw = input.value.trim();
    input.classList.remove('invalid');
    if (!raw) return fallback;
    let v;
    try {
      v = JSON.parse(raw);
    } catch {
      v = undefined;
    }
    if (v === undefined || !valid(v)) {
      input.classList.add('invalid');
      toast(message, 'error');
      return undefined;
    }
    return v;
  }

  // ------------------------------------------------------------------ wiring
  function bindElements() {
    els.conn = $('#conn-status');
    els.connLabel = $('#conn-status .conn-label');
    els.workersCount = $('#workers-count');
    els.slotsUsed = $('#slots-used');
    els.throughputNow = $('#throughput-now');
    els.uptime = $('#uptime');
    els.lastSeq = $('#last-seq');
    els.clock = $('#clock');
    els.count = {};
    els.sub = {};
    for (const s of STATUSES) {
      els.count[s] = $('#count-' + s);
      els.sub[s] = $('#sub-' + s);
    }
    els.staleable = ['#counters', '.hstats', '.panel-queues', '.panel-workers'].map((q) => $(q));
    els.counterStrip = {};
    for (const k of ['submitted', 'retried', 'dropped_results', 'malformed']) els.counterStrip[k] = $('#counter-' + k);
    els.queues = $('#queues');
    els.chart = $('#throughput-chart');
    els.chartTip = $('#chart-tip');
    els.tpNow = $('#tp-now');
    els.tp1m = $('#tp-1m');
    els.tpPeak = $('#tp-peak');
    els.tpTotal = $('#tp-total');
    els.tpFailrate = $('#tp-failrate');
    els.jobsBody = $('#jobs-table tbody');
    els.jobsEmpty = $('#jobs-empty');
    els.jobsCount = $('#jobs-count');
    els.filterText = $('#filter-text');
    els.filterChips = [...document.querySelectorAll('#filter-statuses .chip-toggle')];
    els.jobsPanel = $('.panel-jobs');
    els.pageLabel = $('#page-label');
    els.pageNewer = $('#page-newer');
    els.pageNewest = $('#page-newest');
    els.pageOlder = $('#page-older');
    els.btnRetryFailed = $('#btn-retry-failed');
    els.btnPurgeWaiting = $('#btn-purge-waiting');
    els.schedulesBody = $('#schedules-table tbody');
    els.schedulesEmpty = $('#schedules-empty');
    els.schedulesSummary = $('#schedules-summary');
    els.detailDeps = $('#detail-deps');
    els.detailDependsOn = $('#detail-depends-on');
    els.detailDependents = $('#detail-dependents');
    els.workerDetail = $('#worker-detail');
    els.workerDetailName = $('#worker-detail-name');
    els.workerDetailHost = $('#worker-detail-host');
    els.workerDetailState = $('#worker-detail-state');
    els.workerFields = $('#worker-fields');
    els.workerRunning = $('#worker-running');
    els.workerRunningCount = $('#worker-running-count');
    els.workerJobs = $('#worker-jobs');
    els.filterQueue = $('#filter-queue');
    els.workersBody = $('#workers-table tbody');
    els.workersEmpty = $('#workers-empty');
    els.workersSummary = $('#workers-summary');
    els.activity = $('#activity');
    els.toasts = $('#toasts');
    els.detail = $('#job-detail');
    els.detailId = $('#detail-id');
    els.detailTask = $('#detail-task');
    els.detailStatus = $('#detail-status');
    els.detailFields = $('#detail-fields');
    els.detailError = $('#detail-error');
    els.detailUnserved = $('#detail-unserved');
    els.detailUnservedWhy = $('#detail-unserved-why');
    els.detailUnservedFix = $('#detail-unserved-fix');
    els.detailErrorType = $('#detail-error-type');
    els.detailErrorMessage = $('#detail-error-message');
    els.detailTraceback = $('#detail-traceback');
    els.detailResultBlock = $('#detail-result-block');
    els.detailResult = $('#detail-result');
    els.detailArgs = $('#detail-args');
    els.progressBar = $('#detail-progress-bar');
    els.progressPct = $('#detail-progress-pct');
    els.progressMsg = $('#detail-progress-msg');
    els.btnCancel = $('#btn-cancel');
    els.btnRetry = $('#btn-retry');
    els.log = $('#job-log');
    els.logState = $('#log-state');
    els.logFollow = $('#log-follow');
    els.submitForm = $('#submit-form');
    els.submitTask = $('#submit-task');
    els.submitArgs = $('#submit-args');
    els.submitKwargs = $('#submit-kwargs');
    els.submitQueue = $('#submit-queue');
    els.submitPriority = $('#submit-priority');
    els.submitCount = $('#submit-count');
    els.btnSubmit = $('#btn-submit');
    els.taskNames = $('#task-names');
    els.queueNames = $('#queue-names');
  }

  /** Show the jobs in any of `statuses` (none: all), live from page 1. */
  function setStatusFilter(statuses) {
    state.filter.statuses = new Set(statuses);
    const on = state.filter.statuses;
    for (const t of document.querySelectorAll('.tile[data-status]')) t.classList.toggle('active', on.has(t.dataset.status));
    for (const c of els.filterChips) c.setAttribute('aria-pressed', String(on.has(c.dataset.status)));
    pageLive();
    refreshJobs();
  }

  function toggleStatus(status) {
    const next = new Set(state.filter.statuses);
    if (next.has(status)) next.delete(status);
    else next.add(status);
    setStatusFilter(next);
  }

  function setChartWindow(seconds) {
    state.chartWindowS = seconds;
    for (const b of document.querySelectorAll('.seg button[data-window]')) b.classList.toggle('active', Number(b.dataset.window) === seconds);
    try { localStorage.setItem('zjobs.chartWindow', String(seconds)); } catch { /* private mode */ }
    markDirty('chart');
  }

  function bindEvents() {
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
    els.activity.addEventListener('click', (e) => {
      const li = e.target.closest('li[data-job-id]');
      if (li) openDetail(li.dataset.jobId);
    });
    $('#btn-close-detail').addEventListener('click', closeDetail);
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && !els.detail.hidden) closeDetail();
      else if (e.key === 'Escape' && !els.workerDetail.hidden) closeWorker();
    });
    els.btnCancel.addEventListener('click', () => jobAction('cancel'));
    els.btnRetry.addEventListener('click', () => jobAction('retry'));
    $('#btn-copy-id').addEventListener('click', async () => {
      const id = state.detailId;
      if (!id) return;
      try {
        await navigator.clipboard.writeText(id);
        toast('Job id copied', 'ok', 2000);
      } catch {
        toast(id, 'info', 8000);
      }
    });
    els.log.addEventListener('scroll', () => {
      const box = els.log;
      const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
      if (els.logFollow.checked !== atBottom && detail.logLines) els.logFollow.checked = atBottom;
    }, { passive: true });
    els.submitForm.addEventListener('submit', onSubmit);

    for (const chip of els.filterChips) chip.addEventListener('click', () => toggleStatus(chip.dataset.status));
    els.filterQueue.addEventListener('change', () => {
      state.filter.queue = els.filterQueue.value;
      pageLive();
      markDirty('bulk');
      refreshJobs();
    });
    els.pageOlder.addEventListener('click', pageOlder);
    els.pageNewer.addEventListener('click', pageNewer);
    els.pageNewest.addEventListener('click', () => {
      pageLive();
      refreshJobs();
    });
    els.btnRetryFailed.addEventListener('click', retryAllFailed);
    els.btnPurgeWaiting.addEventListener('click', purgeWaiting);
    els.workersBody.addEventListener('click', (e) => {
      const tr = e.target.closest('tr[data-worker]');
      if (tr) openWorker(tr.dataset.worker);
    });
    $('#btn-close-worker').addEventListener('click', closeWorker);
    els.filterText.addEventListener('input', () => {
      state.filter.text = els.filterText.value.trim().toLowerCase();
      markDirty('jobs');
    });
    for (const tile of document.querySelectorAll('.tile[data-status]')) {
      tile.addEventListener('click', (e) => {
        const status = tile.dataset.status;
        if (e.shiftKey || e.ctrlKey || e.metaKey) toggleStatus(status);  // add to the filter
        else {
          const only = state.filter.statuses.size === 1 && state.filter.statuses.has(status);
          setStatusFilter(only ? [] : [status]);
        }
      });
    }
    for (const b of document.querySelectorAll('.seg button[data-window]')) {
      b.addEventListener('click', () => setChartWindow(Number(b.dataset.window)));
    }

    els.chart.addEventListener('mousemove', (e) => {
      const r = els.chart.getBoundingClientRect();
      chartHover = e.clientX - r.left;
      markDirty('chart');
    });
    els.chart.addEventListener('mouseleave', () => {
      chartHover = null;
      markDirty('chart');
    });
    if ('ResizeObserver' in window) {
      new ResizeObserver((entries) => {
        const r = entries[entries.length - 1].contentRect;
        chartSize = { w: r.width, h: r.height };
        chartFontCache = null;
        markDirty('chart');
      }).observe(els.chart);
    } else {
      window.addEventListener('resize', () => {
        chartSize = null;
        chartFontCache = null;
        markDirty('chart');
      });
    }

    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) markDirty(...renderers.map(([k]) => k));
    });
    window.addEventListener('hashchange', openFromHash);
  }

  function openFromHash() {
    const m = /^#job=(.+)$/.exec(location.hash);
    if (m) openDetail(decodeURIComponent(m[1]));
  }

  function tick() {
    const keys = ['header', 'jobs', 'chart', 'counts', 'schedules'];
    if (state.workerId) keys.push('worker');
    if (state.detailId) {
      const rec = state.jobs.get(state.detailId);
      if (!rec || !TERMINAL.has(rec.status)) keys.push('detail');
    }
    markDirty(...keys);
  }

  function init() {
    bindElements();
    bindEvents();
    let win = 300;
    try { win = Number(localStorage.getItem('zjobs.chartWindow')) || 300; } catch { /* ignore */ }
    setChartWindow(win === 600 ? 600 : 300);
    renderTaskOptions();
    connect();
    refreshStats();
    refreshWorkers();
    refreshQueues();
    refreshJobs();
    refreshSchedules();
    openFromHash();
    refreshHealth();
    setInterval(poll, POLL_INTERVAL_MS);
    setInterval(refreshHealth, HEALTH_INTERVAL_MS);
    setInterval(tick, 1000);
    markDirty(...renderers.map(([k]) => k));
  }

  // A handle for debugging from the console (and for browser tests).
  window.zjobsDashboard = { state, toast, openDetail, closeDetail, openWorker, closeWorker, refresh: resync };

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
