/* The broker's clock as the page sees it. Events carry `ts` (the broker's epoch seconds); the
 * smallest (now - ts) seen is the skew plus the shortest delivery delay. */

let skewMs = null;

export function noteServerTs(tsSec) {
  const ts = Number(tsSec);
  if (!Number.isFinite(ts) || ts <= 0) return;
  const d = Date.now() - ts * 1000;
  if (skewMs === null || d < skewMs) skewMs = d;
  else if (d - skewMs < 2000) skewMs += (d - skewMs) * 0.01;
}

/** The broker's time now, in epoch ms. */
export function serverNow() {
  return Date.now() - (skewMs || 0);
}

/** How far the local clock is ahead of the broker's, in ms. */
export function skew() {
  return skewMs || 0;
}
