/* zjobs live dashboard: the entry module.
 *
 * Plain ES modules, no framework, no build step, no network beyond the zjobs API itself.
 * The page first reads the facts it builds on (GET /meta: states, event types, limits), then
 * builds what depends on them, seeds the model from REST snapshots, follows the event stream
 * and renders at most about 4 times a second. The modules, each with one job:
 *
 *   api.js      the API's URLs, the token, fetch        meta.js     the facts of GET /meta
 *   state.js    the model: jobs, counts, event log      stats.js    STATS into the model
 *   refresh.js  REST snapshots, resync, poll            sse.js      the event stream
 *   throughput.js  jobs finished per second             chart.js    its canvas chart
 *   actions.js  pause, purge, retry, cancel, remove     render.js   dirty flags, render loop
 *   format.js, dom.js, clock.js: helpers                views/*.js  one part of the page each
 */
import { initChart, renderChart } from './chart.js';
import { TERMINAL, loadMeta } from './meta.js';
import { authProblem, poll, refreshHealth, resync } from './refresh.js';
import { markAllDirty, markDirty, useRenderers } from './render.js';
import { connect } from './sse.js';
import { state } from './state.js';
import { closeDetail, initDetail, isDetailOpen, openDetail, renderDetail } from './views/detail.js';
import { initFeed, renderFeed, toast } from './views/feed.js';
import { initHeader, renderHeader } from './views/header.js';
import { initJobs, renderBulk, renderJobs } from './views/jobs.js';
import { initQueues, renderQueueOptions, renderQueues } from './views/queues.js';
import { initSchedules, renderSchedules } from './views/schedules.js';
import { initSubmit, renderTaskOptions } from './views/submit.js';
import { initTiles, renderCounts } from './views/tiles.js';
import {
  closeWorker, initWorkers, isWorkerOpen, openWorker, renderWorkerDetail, renderWorkers,
} from './views/workers.js';

const POLL_INTERVAL_MS = 3000;    // /workers, /queues, /schedules
const HEALTH_INTERVAL_MS = 2000;  // /health: is the broker reachable?
const META_RETRY_MS = 2000;

// A handle for debugging from the console (and for browser tests).
window.zjobsDashboard = { state, toast, openDetail, closeDetail, openWorker, closeWorker, refresh: resync };

/** GET /meta until it answers: nothing of the page can be built without its facts. */
async function loadFacts() {
  for (;;) {
    try {
      await loadMeta();
      return;
    } catch (err) {
      if (err.status === 401) authProblem();
      else console.warn('GET /meta failed:', err.message);
    }
    await new Promise((resolve) => setTimeout(resolve, META_RETRY_MS));
  }
}

function bindPage() {
  document.getElementById('activity').addEventListener('click', (e) => {
    const li = e.target.closest('li[data-job-id]');
    if (li) openDetail(li.dataset.jobId);
  });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && isDetailOpen()) closeDetail();
    else if (e.key === 'Escape' && isWorkerOpen()) closeWorker();
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) markAllDirty();
  });
  window.addEventListener('hashchange', openFromHash);
}

function openFromHash() {
  const m = /^#job=(.+)$/.exec(location.hash);
  if (m) openDetail(decodeURIComponent(m[1]));
}

/** Once a second: what shows the time (ages, durations, the clock). */
function tick() {
  const keys = ['header', 'jobs', 'chart', 'counts', 'schedules'];
  if (state.workerId) keys.push('worker');
  if (state.detailId) {
    const rec = state.jobs.get(state.detailId);
    if (!rec || !TERMINAL.has(rec.status)) keys.push('detail');
  }
  markDirty(...keys);
}

async function start() {
  initFeed();
  await loadFacts();
  initHeader();
  initTiles();
  initChart();
  initQueues();
  initJobs();
  initWorkers();
  initSchedules();
  initSubmit();
  initDetail();
  bindPage();
  // The chart goes first: setting a canvas font resolves styles, which is cheap only
  // while no DOM change of the frame is pending.
  useRenderers([
    ['chart', renderChart],
    ['header', renderHeader],
    ['counts', renderCounts],
    ['queues', renderQueues],
    ['queueOptions', renderQueueOptions],
    ['taskOptions', renderTaskOptions],
    ['jobs', renderJobs],
    ['workers', renderWorkers],
    ['feed', renderFeed],
    ['detail', renderDetail],
    ['schedules', renderSchedules],
    ['worker', renderWorkerDetail],
    ['bulk', renderBulk],
  ]);
  connect();
  resync();
  openFromHash();
  refreshHealth();
  setInterval(poll, POLL_INTERVAL_MS);
  setInterval(refreshHealth, HEALTH_INTERVAL_MS);
  setInterval(tick, 1000);
  markAllDirty();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
