/* Jobs finished per second: a ring of the last RING seconds, filled by the job events and
 * seeded from the broker's own history (GET /stats), so a reload does not reset it. */
import { serverNow } from './clock.js';
import { num } from './format.js';
import { markDirty } from './render.js';
import { state } from './state.js';

export const RING = 720;  // seconds of throughput history kept

const ringSec = new Float64Array(RING).fill(-1);
const ringOk = new Uint32Array(RING);
const ringFail = new Uint32Array(RING);

/** A job ended at `tsSec` (broker epoch seconds), well or not. */
export function bumpChart(tsSec, failed) {
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
export function seedHistory(h) {
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

/** [succeeded, failed] in the second `sec`. */
export function bucket(sec) {
  const i = ((sec % RING) + RING) % RING;
  return ringSec[i] === sec ? [ringOk[i], ringFail[i]] : [0, 0];
}

export function rateOver(seconds) {
  const nowSec = Math.floor(serverNow() / 1000);
  let n = 0;
  for (let s = nowSec - seconds; s < nowSec; s++) {
    const [ok, fail] = bucket(s);
    n += ok + fail;
  }
  return n / seconds;
}

/** How many jobs ended in the last `seconds`: `which` 0 succeeded, 1 failed. */
export function finishedLast(seconds, which) {
  const nowSec = Math.floor(serverNow() / 1000);
  let n = 0;
  for (let s = nowSec - seconds; s <= nowSec; s++) n += bucket(s)[which];
  return n;
}

export function throughputNow() {
  const sinceLoad = (Date.now() - state.loadedAt) / 1000;
  if (sinceLoad < 6 && state.brokerTput != null) return state.brokerTput;
  return rateOver(5);
}
