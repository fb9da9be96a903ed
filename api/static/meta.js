/* The facts the dashboard builds on, read once from GET /meta when it starts: the job states,
 * the event types and the limits are the API's own, never copies kept here.
 *
 * The code names a state or an event type through STATE and EVENT, keyed as the Python enums
 * name their members (`job.succeeded` is EVENT.JOB_SUCCEEDED, `running` STATE.RUNNING); a
 * test checks that every name used here is a member. The containers below are filled in
 * place by loadMeta(), before anything else of the page runs.
 */
import { api } from './api.js';

export const STATE = {};
export const EVENT = {};
export const STATES = [];            // every state, in lifecycle order
export const TERMINAL = new Set();   // the states a job ends in
export const ACTIVE = [];            // the others, in order: what a queue's depth counts
export const RETRYABLE = new Set();  // the ended states a retry runs again from
export const PURGEABLE = [];         // the waiting states a purge cancels
export const EVENT_TYPES = [];       // every event type the broker publishes
export const LIMITS = {};            // list_limit, result_wait_s, body_bytes, fields...
export const VERSION = { api: null };

// What the page derives from them, for the job events:
export const TYPE_STATUS = {};       // event type -> the state it moves a job to
export const TYPE_COUNTER = {};      // event type -> the broker counter it counts in

/** `job.succeeded` -> `JOB_SUCCEEDED`: the Python enums' rule for their members' names. */
function memberName(value) {
  return value.toUpperCase().replace(/\./g, '_');
}

/** Read GET /meta and fill the facts; throws ApiError when the API does not answer it. */
export async function loadMeta() {
  const meta = await api('meta');
  for (const s of meta.states) STATE[memberName(s)] = s;
  for (const t of meta.event_types) EVENT[memberName(t)] = t;
  STATES.push(...meta.states);
  for (const s of meta.terminal) TERMINAL.add(s);
  ACTIVE.push(...STATES.filter((s) => !TERMINAL.has(s)));
  for (const s of meta.retryable) RETRYABLE.add(s);
  PURGEABLE.push(...meta.purgeable);
  EVENT_TYPES.push(...meta.event_types);
  Object.assign(LIMITS, meta.limits);
  VERSION.api = meta.version;
  deriveJobEvents(meta.state_events);
}

function deriveJobEvents(stateEvents) {
  for (const [state, type] of Object.entries(stateEvents)) TYPE_STATUS[type] = state;
  TYPE_STATUS[EVENT.JOB_SUBMITTED] = STATE.QUEUED;  // or the `status` the event carries
  TYPE_STATUS[EVENT.JOB_STARTED] = STATE.RUNNING;
  TYPE_STATUS[EVENT.JOB_RETRYING] = STATE.QUEUED;
  TYPE_COUNTER[EVENT.JOB_SUBMITTED] = 'submitted';
  TYPE_COUNTER[EVENT.JOB_RETRYING] = 'retried';
  for (const s of TERMINAL) TYPE_COUNTER[stateEvents[s]] = s;  // counted under its state
}
