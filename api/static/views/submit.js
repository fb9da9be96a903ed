/* The submit form: a job (or COUNT of them, one batch) with its args, kwargs, queue and
 * priority, held to the bounds GET /meta gives; it suggests the tasks the live workers have. */
import { api } from '../api.js';
import { elements } from '../dom.js';
import { num, shortId } from '../format.js';
import { LIMITS } from '../meta.js';
import { authProblem } from '../refresh.js';
import { eventMark, mergeJobs, state } from '../state.js';
import { toast } from './feed.js';

const els = {};

export function initSubmit() {
  Object.assign(els, elements({
    form: '#submit-form', task: '#submit-task', args: '#submit-args', kwargs: '#submit-kwargs',
    queue: '#submit-queue', priority: '#submit-priority', count: '#submit-count',
    button: '#btn-submit', taskNames: '#task-names',
  }));
  const fields = LIMITS.fields;
  els.task.maxLength = fields.task.max_len;
  els.queue.maxLength = fields.queue.max_len;
  els.priority.min = fields.priority.min;
  els.priority.max = fields.priority.max;
  els.form.addEventListener('submit', onSubmit);
}

/** The tasks the live workers have, as the task field's suggestions. */
export function renderTaskOptions() {
  const tasks = new Set();
  for (const w of state.workers.values()) for (const t of w.tasks || []) tasks.add(String(t));
  const sorted = [...tasks].sort();
  const key = sorted.join('\u0000');
  if (els.taskNames.dataset.key === key) return;
  els.taskNames.dataset.key = key;
  els.taskNames.replaceChildren(...sorted.map((n) => new Option(n)));
}

/** The job the form describes, or undefined (the field at fault marked, a toast said why). */
function formJob() {
  const task = els.task.value.trim();
  if (!task) {
    els.task.classList.add('invalid');
    toast('Task name is required', 'error');
    return undefined;
  }
  els.task.classList.remove('invalid');
  const args = parseJsonField(els.args, [], Array.isArray, 'Args must be a JSON array, e.g. [1, 2]');
  if (args === undefined) return undefined;
  const kwargs = parseJsonField(els.kwargs, null, (v) => v && typeof v === 'object' && !Array.isArray(v), 'Kwargs must be a JSON object, e.g. {"n": 3}');
  if (kwargs === undefined) return undefined;
  const job = { task, args };
  if (kwargs && Object.keys(kwargs).length) job.kwargs = kwargs;
  const queue = els.queue.value.trim();
  if (queue) job.queue = queue;
  const prio = Number(els.priority.value);
  if (els.priority.value !== '' && Number.isFinite(prio)) job.priority = Math.trunc(prio);
  return job;
}

async function onSubmit(e) {
  e.preventDefault();
  const job = formJob();
  if (job === undefined) return;
  const count = Math.min(num(els.count.max, 1), Math.max(1, Math.trunc(num(els.count.value, 1)) || 1));
  const body = count === 1 ? job : { jobs: Array.from({ length: count }, () => ({ ...job })) };
  els.button.disabled = true;
  const startIdx = eventMark();
  try {
    const r = await api('jobs', { method: 'POST', body });
    const jobs = r && Array.isArray(r.jobs) ? r.jobs : r ? [r] : [];
    mergeJobs(jobs, startIdx);
    if (count === 1 && jobs[0]) toast(`Submitted ${job.task} · ${shortId(jobs[0].id)}`, 'ok', 3000);
    else toast(`Submitted ${jobs.length || count} × ${job.task}`, 'ok', 3000);
  } catch (err) {
    if (err.status === 401) authProblem();
    toast(err.message, 'error');
  } finally {
    els.button.disabled = false;
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
