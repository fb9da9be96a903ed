/* The top bar: whether the page is live (the event stream open and the broker reachable), the
 * cluster's figures, and the "stale" marks on the live counts while it is not. */
import { $, elements, setAttr, setText } from '../dom.js';
import { fmtClock, fmtDur, fmtRate, num } from '../format.js';
import { VERSION } from '../meta.js';
import { state } from '../state.js';
import { throughputNow } from '../throughput.js';

const els = {};

export function initHeader() {
  Object.assign(els, elements({
    conn: '#conn-status', connLabel: '#conn-status .conn-label', workersCount: '#workers-count',
    slotsUsed: '#slots-used', throughputNow: '#throughput-now', uptime: '#uptime',
    lastSeq: '#last-seq', clock: '#clock',
  }));
  els.staleable = ['#counters', '.hstats', '.panel-queues', '.panel-workers'].map((q) => $(q));
  $('.brand').title = 'zjobs ' + VERSION.api;
}

export function renderHeader() {
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
