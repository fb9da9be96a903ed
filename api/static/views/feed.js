/* The activity feed (what happened, newest first) and the toasts (what the page did). */
import { el, elements } from '../dom.js';
import { fmtClock, shortId } from '../format.js';
import { markDirty } from '../render.js';
import { state } from '../state.js';

const FEED_MAX = 60;
const els = {};

export function initFeed() {
  Object.assign(els, elements({
    activity: '#activity', toasts: '#toasts',
  }));
}

/** `item`: {text, tone?: a state whose colour the dot takes, jobId?, detail?}. */
export function pushFeed(item) {
  item.at = Date.now();
  state.feed.push(item);
  if (state.feed.length > FEED_MAX * 4) state.feed.splice(0, state.feed.length - FEED_MAX);
  markDirty('feed');
}

export function renderFeed() {
  const items = state.feed.slice(-FEED_MAX).reverse();
  if (!items.length) return;
  els.activity.replaceChildren(...items.map(feedItem));
}

function feedItem(it) {
  const li = el('li');
  if (it.jobId) li.dataset.jobId = it.jobId;
  const dot = el('span', 'a-dot');
  if (it.tone) dot.style.setProperty('--rgb', `var(--${it.tone})`);  // the state's colour
  const text = el('span', 'a-text');
  text.append(document.createTextNode(it.text));
  if (it.jobId) {
    text.append(document.createTextNode(' '));
    text.append(el('code', null, shortId(it.jobId)));
  }
  if (it.detail) text.append(document.createTextNode(' · ' + it.detail));
  text.title = text.textContent;
  li.append(el('time', null, fmtClock(it.at)), dot, text);
  return li;
}

/** A message in a corner for `ms`; `kind` is info, ok, warn or error. */
export function toast(message, kind = 'info', ms = 5000) {
  const t = el('div', 'toast ' + kind);
  t.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  if (kind === 'error') t.append(el('b', null, 'Error'));
  t.append(document.createTextNode(message));
  t.addEventListener('click', () => t.remove());
  els.toasts.append(t);
  while (els.toasts.children.length > 5) els.toasts.firstElementChild.remove();
  setTimeout(() => t.remove(), ms);
  return t;
}
