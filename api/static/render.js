/* Dirty flags and the render loop. Data handlers only mark what changed; the loop, throttled
 * to about 4 Hz, runs each marked renderer once, so a burst of thousands of events costs one
 * render, not thousands. */

const RENDER_INTERVAL_MS = 250;

const dirty = new Set();
let renderers = [];
let renderTimer = null;
let lastRender = 0;

/** The renderers, as [key, fn] in the order they run (the chart first: setting a canvas
 * font resolves styles, which is cheap only while no DOM change of the frame is pending). */
export function useRenderers(list) {
  renderers = list;
}

export function markDirty(...keys) {
  for (const k of keys) dirty.add(k);
  scheduleRender();
}

export function markAllDirty() {
  markDirty(...renderers.map(([k]) => k));
}

function scheduleRender() {
  if (renderTimer !== null) return;
  const wait = Math.max(0, RENDER_INTERVAL_MS - (performance.now() - lastRender));
  renderTimer = setTimeout(() => {
    const run = () => {
      renderTimer = null;
      lastRender = performance.now();
      render();
    };
    if (document.hidden) run();
    else requestAnimationFrame(run);
  }, wait);
}

function render() {
  const todo = new Set(dirty);
  dirty.clear();
  for (const [key, fn] of renderers) {
    if (!todo.has(key)) continue;
    try {
      fn();
    } catch (err) {
      console.error('render ' + key + ' failed', err);
    }
  }
}
