/* What a person can do from the page: pause, resume or purge a queue, retry every failed job,
 * purge every waiting one, cancel or retry a job, remove a schedule. Each asks first where
 * it cannot be undone, calls the API, applies the answer to the model and says how it went. */
import { api } from './api.js';
import { num, pos, shortId } from './format.js';
import { PURGEABLE, STATE } from './meta.js';
import { authProblem, refreshJobs } from './refresh.js';
import { markDirty } from './render.js';
import { eventMark, mergeJobs, setQueueSettings, state } from './state.js';
import { toast } from './views/feed.js';

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

export async function setQueuePaused(name, paused) {
  try {
    const r = await api('queues/' + encodeURIComponent(name), { method: 'PATCH', body: { paused } });
    setQueueSettings(name, r);
  } catch (err) {
    toast(`queue ${name}: ${err.message}`, 'error');
  }
}

export async function purgeQueue(name) {
  if (!window.confirm(`Cancel every waiting job of queue "${name}"? Running jobs go on.`)) return;
  try {
    const r = await api('queues/' + encodeURIComponent(name) + '/purge', { method: 'POST' });
    toast(`queue ${name}: ${r.cancelled} cancelled`);
  } catch (err) {
    toast(`queue ${name}: ${err.message}`, 'error');
  }
}

/** The queues a bulk action applies to: the one filtered on, or every queue. */
function bulkQueues() {
  return state.filter.queue ? [state.filter.queue] : Object.keys(state.queues);
}

function countIn(queues, statuses) {
  let n = 0;
  for (const q of queues) for (const s of statuses) n += pos((state.queues[q] || {})[s]);
  return Math.round(n);
}

/** What the bulk actions would act on now: {failed, waiting} jobs. */
export function bulkCounts() {
  const queues = bulkQueues();
  return { failed: countIn(queues, [STATE.FAILED]), waiting: countIn(queues, PURGEABLE) };
}

export async function retryAllFailed() {
  const queue = state.filter.queue || null;
  const n = countIn(bulkQueues(), [STATE.FAILED]);
  const where = queue ? ` of queue "${queue}"` : '';
  if (!window.confirm(`Run all ${plural(n, 'failed job')}${where} again?`)) return;
  try {
    const r = await api('jobs/retry', { method: 'POST', body: { status: [STATE.FAILED], queue } });
    toast(`${plural(r.retried, 'failed job')} queued again`, 'ok');
    refreshJobs();
  } catch (err) {
    toast(`retry all failed: ${err.message}`, 'error');
  }
}

export async function purgeWaiting() {
  const queues = bulkQueues();
  const n = countIn(queues, PURGEABLE);
  const where = state.filter.queue ? `queue "${state.filter.queue}"` : `all ${queues.length} queues`;
  if (!window.confirm(`Cancel all ${n} waiting (${PURGEABLE.join(', ')}) jobs of ${where}? Running jobs go on.`)) return;
  let cancelled = 0;
  try {
    for (const q of queues) {
      const r = await api('queues/' + encodeURIComponent(q) + '/purge', { method: 'POST' });
      cancelled += num(r.cancelled);
    }
    toast(`${plural(cancelled, 'waiting job')} cancelled`, 'ok');
  } catch (err) {
    toast(`purge: ${err.message}`, 'error');
  }
}

/** POST /jobs/{id}/cancel or /retry; the job as it is then, or null (and a toast). */
export async function jobAction(id, action) {
  const startIdx = eventMark();
  try {
    const j = await api(`jobs/${encodeURIComponent(id)}/${action}`, { method: 'POST' });
    if (j && j.id != null) mergeJobs([j], startIdx);
    toast(action === 'cancel' ? `Cancel requested for ${shortId(id)}` : `Job ${shortId(id)} queued again`, 'ok');
    return j;
  } catch (err) {
    if (err.status === 401) authProblem();
    toast(err.message, 'error');
    return null;
  } finally {
    markDirty('detail', 'jobs');
  }
}

export async function removeSchedule(name) {
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
