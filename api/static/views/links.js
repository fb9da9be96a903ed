/* Pieces the job view and the worker view share: links to jobs and lists of fields. */
import { el } from '../dom.js';
import { shortId } from '../format.js';
import { state } from '../state.js';

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

/** `ul` as links to the jobs of `ids`, rebuilt only when one of them changed state. */
export function renderLinks(ul, ids, noneText) {
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

/** A `<dl>` of [label, value] pairs, rebuilt only when a value changed. */
export function renderFields(dl, fields) {
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
