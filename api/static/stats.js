/* The broker's STATS, from GET /stats or the stream's broker.stats, into the model. */
import { serverNow } from './clock.js';
import { num } from './format.js';
import { markDirty } from './render.js';
import { eventMark, setCountsSnapshot, state } from './state.js';
import { RING, seedHistory } from './throughput.js';

/** Apply a STATS body; `marker` says when its request was sent (REST) or that it came in
 * the stream (`fromStream`), consistent with the events around it. */
export function onStats(s, marker, fromStream = false) {
  if (!s || typeof s !== 'object') return;
  if (s.history && typeof s.history === 'object') seedHistory(s.history);
  if (s.throughput_per_s != null) noteThroughput(num(s.throughput_per_s));
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
    setCountsSnapshot(parts, { seq, idx: eventMark() });
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

/** The broker's own throughput figure, one sample a second, for the chart's dashed line. */
function noteThroughput(value) {
  state.brokerTput = value;
  const sec = Math.floor(serverNow() / 1000);
  const samples = state.brokerTputSamples;
  if (samples.length && samples[samples.length - 1][0] === sec) samples[samples.length - 1][1] = value;
  else samples.push([sec, value]);
  while (samples.length && samples[0][0] < sec - RING) samples.shift();
}
