/* The schedules panel: when each fires, its next and last run, and a Remove button. */
import { removeSchedule } from '../actions.js';
import { serverNow } from '../clock.js';
import { cellsOf, el, elements, setAttr, setText } from '../dom.js';
import { fmtDateTime, fmtDur, num, parseTime, relTime } from '../format.js';
import { state } from '../state.js';

const els = {};
const scheduleRows = new Map();

export function initSchedules() {
  Object.assign(els, elements({
    schedulesBody: '#schedules-table tbody', schedulesEmpty: '#schedules-empty',
    schedulesSummary: '#schedules-summary',
  }));
}

function scheduleWhen(sc) {
  if (sc.cron) return sc.cron;
  const e = num(sc.every_s);
  return e ? `every ${e < 60 ? e + ' s' : fmtDur(e * 1000)}` : '–';
}

export function renderSchedules() {
  const names = [...state.schedules.keys()].sort();
  const tbody = els.schedulesBody;
  const now = serverNow();
  names.forEach((name, i) => {
    let row = scheduleRows.get(name);
    if (!row) {
      row = makeScheduleRow(name);
      scheduleRows.set(name, row);
    }
    updateScheduleRow(row, name, state.schedules.get(name), now);
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

function updateScheduleRow(row, name, sc, now) {
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
}

function makeScheduleRow(name) {
  const tr = document.createElement('tr');
  tr.dataset.schedule = name;
  const cell = cellsOf(tr);
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
