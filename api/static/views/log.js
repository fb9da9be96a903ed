/* The job view's log: GET /jobs/{id}/logs/stream (every line from the first, then live, then
 * `end`), written in batches once a frame, each line once across reconnects; the plain log
 * when the stream is not available. */
import { api, apiUrl, withToken } from '../api.js';
import { el, elements, setText } from '../dom.js';
import { EVENT, TERMINAL } from '../meta.js';
import { state } from '../state.js';

const LOG_MAX_LINES = 5000;  // lines kept in the pane

const els = {};
const log = {
  es: null,
  lines: 0,
  seen: new Set(),
  ended: false,
  pending: [],
  flushScheduled: false,
  errors: 0,
};

export function initLog() {
  Object.assign(els, elements({
    log: '#job-log', logState: '#log-state', logFollow: '#log-follow',
  }));
  els.log.addEventListener('scroll', () => {
    const box = els.log;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    if (els.logFollow.checked !== atBottom && log.lines) els.logFollow.checked = atBottom;
  }, { passive: true });
}

/** The log stream has ended (with its job): a new run needs a new stream. */
export function logEnded() {
  return log.ended;
}

export function resetLog() {
  log.lines = 0;
  log.seen.clear();
  log.pending = [];
  els.log.replaceChildren(el('div', 'log-empty', 'No output yet.'));
  setText(els.logState, '');
}

export function closeLogStream() {
  if (log.es) {
    log.es.close();
    log.es = null;
  }
}

/** A new attempt started: its lines may be numbered from 1 again. */
export function newAttempt(text) {
  log.seen.clear();
  appendLogSep(text);
}

/** Follow job `id`'s log; `onEnd` runs when the stream says the job has ended. */
export function openLogStream(id, onEnd) {
  closeLogStream();
  log.ended = false;
  log.errors = 0;
  setText(els.logState, 'connecting…');
  const source = new EventSource(withToken(apiUrl(`jobs/${encodeURIComponent(id)}/logs/stream`)));
  log.es = source;
  source.onopen = () => {
    if (log.es === source) setText(els.logState, 'live');
  };
  source.addEventListener(EVENT.LOG, (msg) => {
    if (log.es === source) onLine(msg);
  });
  source.addEventListener('end', (msg) => {
    if (log.es !== source) return;
    let d = {};
    try { d = JSON.parse(msg.data) || {}; } catch { /* keep {} */ }
    log.ended = true;
    source.close();
    log.es = null;
    flushLog();
    appendLogSep(`— job ${d.status || 'ended'} —`, d.status ? 'end-' + d.status : '');
    setText(els.logState, 'ended');
    onEnd();
  });
  source.onerror = () => {
    if (log.es !== source) return;
    log.errors += 1;
    const rec = state.jobs.get(id);
    const terminal = rec && TERMINAL.has(rec.status);
    if (source.readyState === EventSource.CLOSED || (terminal && log.errors >= 2)) {
      source.close();
      log.es = null;
      setText(els.logState, 'stream unavailable');
      if (!log.lines) loadLogSnapshot(id);
    } else {
      setText(els.logState, 'reconnecting…');
    }
  };
}

function onLine(msg) {
  let d;
  try { d = JSON.parse(msg.data); } catch { return; }
  if (!d || typeof d !== 'object') return;
  const stream = d.stream === 'stderr' ? 'stderr' : 'stdout';
  const key = `${stream}:${d.line}`;
  if (d.line != null) {
    // After a reconnect the server may replay lines we already show.
    if (log.seen.has(key)) return;
    log.seen.add(key);
  }
  queueLogLine({ stream, line: d.line, data: d.data == null ? '' : String(d.data) });
}

async function loadLogSnapshot(id) {
  try {
    const text = await api(`jobs/${encodeURIComponent(id)}/logs`, { raw: true });
    if (state.detailId !== id || log.lines || typeof text !== 'string' || !text) return;
    text.replace(/\n$/, '').split('\n').forEach((line, i) => queueLogLine({ stream: 'stdout', line: i + 1, data: line }));
    setText(els.logState, 'snapshot');
  } catch {
    /* no log endpoint or no log: leave the pane as it is */
  }
}

function queueLogLine(line) {
  log.pending.push(line);
  if (log.flushScheduled) return;
  log.flushScheduled = true;
  requestAnimationFrame(flushLog);
}

function flushLog() {
  log.flushScheduled = false;
  const lines = log.pending;
  if (!lines.length) return;
  log.pending = [];
  const box = els.log;
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  if (!log.lines) box.replaceChildren();
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
  log.lines += lines.length - from;
  while (box.childElementCount > LOG_MAX_LINES) box.firstElementChild.remove();
  if (els.logFollow.checked || atBottom) box.scrollTop = box.scrollHeight;
}

function appendLogSep(text, cls = '') {
  flushLog();
  const box = els.log;
  if (!log.lines) box.replaceChildren();
  log.lines += 1;
  box.append(el('div', 'sep ' + cls, text));
  if (els.logFollow.checked) box.scrollTop = box.scrollHeight;
}
