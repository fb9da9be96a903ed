/* The throughput chart: jobs finished per second over the last 5 or 10 minutes, succeeded
 * with failed stacked on top, a 10 s average, the broker's own figure dashed, a tooltip. */
import { serverNow, skew } from './clock.js';
import { $, el, elements, setText } from './dom.js';
import { fmtClock, fmtRate } from './format.js';
import { STATE } from './meta.js';
import { markDirty } from './render.js';
import { state } from './state.js';
import { bucket, rateOver } from './throughput.js';

const PAD = { l: 44, r: 12, t: 10, b: 24 };
const els = {};
let hover = null;      // x in CSS px, or null
let size = null;       // {w, h} in CSS px, from the ResizeObserver
let fontCache = null;

export function initChart() {
  Object.assign(els, elements({
    chart: '#throughput-chart', tip: '#chart-tip',
  }));
  for (const id of ['tp-now', 'tp-1m', 'tp-peak', 'tp-total', 'tp-failrate']) els[id] = $('#' + id);
  els.chart.addEventListener('mousemove', (e) => {
    hover = e.clientX - els.chart.getBoundingClientRect().left;
    markDirty('chart');
  });
  els.chart.addEventListener('mouseleave', () => {
    hover = null;
    markDirty('chart');
  });
  if ('ResizeObserver' in window) {
    new ResizeObserver((entries) => {
      const r = entries[entries.length - 1].contentRect;
      size = { w: r.width, h: r.height };
      fontCache = null;
      markDirty('chart');
    }).observe(els.chart);
  } else {
    window.addEventListener('resize', () => {
      size = null;
      fontCache = null;
      markDirty('chart');
    });
  }
  for (const b of document.querySelectorAll('.seg button[data-window]')) {
    b.addEventListener('click', () => setChartWindow(Number(b.dataset.window)));
  }
  let win = 300;
  try { win = Number(localStorage.getItem('zjobs.chartWindow')) || 300; } catch { /* ignore */ }
  setChartWindow(win === 600 ? 600 : 300);
}

function setChartWindow(seconds) {
  state.chartWindowS = seconds;
  for (const b of document.querySelectorAll('.seg button[data-window]')) b.classList.toggle('active', Number(b.dataset.window) === seconds);
  try { localStorage.setItem('zjobs.chartWindow', String(seconds)); } catch { /* private mode */ }
  markDirty('chart');
}

/** A round tick step (1, 2, 2.5, 5 x 10^k), at least 1, with at most ~4 ticks up to `max`. */
function yScale(max) {
  const raw = Math.max(max, 1) / 4;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  let step = 10 * p;
  for (const m of [1, 2, 2.5, 5]) {
    if (m * p >= raw) {
      step = m * p;
      break;
    }
  }
  step = Math.max(1, step);
  const ticks = Math.max(1, Math.ceil(max / step - 1e-9));
  return { step, ticks, yMax: step * ticks };
}

/** The window's seconds: [start, now - 1] (the current second is still filling). */
function series(span) {
  const start = Math.floor(serverNow() / 1000) - span;
  const ok = new Array(span);
  const fail = new Array(span);
  let total = 0;
  let totalFail = 0;
  let peak = 0;
  for (let i = 0; i < span; i++) {
    const [a, b] = bucket(start + i);
    ok[i] = a;
    fail[i] = b;
    total += a + b;
    totalFail += b;
    peak = Math.max(peak, a + b);
  }
  const broker = state.brokerTputSamples.filter(([s]) => s >= start && s < start + span);
  return { start, span, ok, fail, total, totalFail, peak, broker, avg: movingAverage(ok, fail, 10) };
}

export function renderChart() {
  const canvas = els.chart;
  // The size comes from the ResizeObserver: reading clientWidth here would force
  // a synchronous layout right after the tables were updated.
  if (!size) size = { w: canvas.clientWidth, h: canvas.clientHeight };
  const { w, h } = size;
  if (!w || !h) return;
  const dpr = window.devicePixelRatio || 1;
  const pw = Math.round(w * dpr);
  const ph = Math.round(h * dpr);
  if (canvas.width !== pw || canvas.height !== ph) {
    canvas.width = pw;
    canvas.height = ph;
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const data = series(state.chartWindowS);
  let max = data.peak;
  for (const [, v] of data.broker) max = Math.max(max, v);
  const scale = yScale(max);
  const plot = { w, h, plotW: w - PAD.l - PAD.r, plotH: h - PAD.t - PAD.b };
  plot.x = (i) => PAD.l + (i / data.span) * plot.plotW;
  plot.y = (v) => PAD.t + plot.plotH - (v / scale.yMax) * plot.plotH;
  drawAxes(ctx, plot, data.span, scale);
  drawBars(ctx, plot, data);
  drawBroker(ctx, plot, data);
  drawAverage(ctx, plot, data);
  drawHover(ctx, plot, data);
  setText(els['tp-now'], fmtRate(rateOver(5)));
  setText(els['tp-1m'], fmtRate(rateOver(60)));
  setText(els['tp-peak'], fmtRate(data.peak));
  setText(els['tp-total'], String(data.total));
  setText(els['tp-failrate'], data.total ? ((data.totalFail / data.total) * 100).toFixed(1) + '%' : '–');
}

/** The grid with its y labels, and the x labels every minute (two in the 10 min window). */
function drawAxes(ctx, { w, plotH, x, y }, span, { step, ticks }) {
  ctx.font = chartFont();
  ctx.textBaseline = 'middle';
  ctx.textAlign = 'right';
  for (let k = 0; k <= ticks; k++) {
    const v = step * k;
    const yy = Math.round(y(v)) + 0.5;
    ctx.strokeStyle = k === 0 ? 'rgba(131,145,167,0.45)' : 'rgba(131,145,167,0.14)';
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(PAD.l, yy);
    ctx.lineTo(w - PAD.r, yy);
    ctx.stroke();
    ctx.fillStyle = '#8391a7';
    ctx.fillText(Number.isInteger(v) ? String(v) : v.toFixed(1), PAD.l - 8, yy);
  }
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  const stepS = span <= 300 ? 60 : 120;
  for (let s = 0; s <= span; s += stepS) {
    const xx = x(span - s);
    ctx.fillStyle = '#5b687c';
    ctx.fillText(s === 0 ? 'now' : `-${s / 60}m`, Math.min(Math.max(xx, PAD.l + 12), w - PAD.r - 12), PAD.t + plotH + 6);
    if (s > 0) {
      ctx.strokeStyle = 'rgba(131,145,167,0.07)';
      ctx.beginPath();
      ctx.moveTo(Math.round(xx) + 0.5, PAD.t);
      ctx.lineTo(Math.round(xx) + 0.5, PAD.t + plotH);
      ctx.stroke();
    }
  }
}

/** Bars: succeeded, with failed stacked on top. */
function drawBars(ctx, { plotW, x, y }, { span, ok, fail }) {
  const bw = plotW / span;
  const gap = bw > 3 ? 1 : 0;
  for (let i = 0; i < span; i++) {
    const a = ok[i];
    const b = fail[i];
    if (!a && !b) continue;
    const x0 = x(i);
    if (a) {
      ctx.fillStyle = 'rgba(47,191,113,0.85)';
      ctx.fillRect(x0, y(a), Math.max(bw - gap, 0.75), y(0) - y(a));
    }
    if (b) {
      ctx.fillStyle = 'rgba(240,82,90,0.95)';
      ctx.fillRect(x0, y(a + b), Math.max(bw - gap, 0.75), y(a) - y(a + b));
    }
  }
}

/** The broker-reported throughput, dashed. */
function drawBroker(ctx, { x, y }, { start, broker }) {
  if (broker.length <= 1) return;
  ctx.save();
  ctx.setLineDash([5, 4]);
  ctx.strokeStyle = 'rgba(99,199,255,0.8)';
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  broker.forEach(([s, v], k) => {
    const xx = x(s - start + 0.5);
    if (k) ctx.lineTo(xx, y(v));
    else ctx.moveTo(xx, y(v));
  });
  ctx.stroke();
  ctx.restore();
}

/** The moving average's line, or a note while nothing has finished in the window. */
function drawAverage(ctx, { plotW, plotH, x, y }, { span, total, avg }) {
  if (total > 0) {
    ctx.strokeStyle = 'rgba(233,238,246,0.95)';
    ctx.lineWidth = 2;
    ctx.lineJoin = 'round';
    ctx.beginPath();
    for (let i = 0; i < span; i++) {
      const xx = x(i + 0.5);
      if (i) ctx.lineTo(xx, y(avg[i]));
      else ctx.moveTo(xx, y(avg[i]));
    }
    ctx.stroke();
  } else {
    ctx.fillStyle = '#5b687c';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText('Waiting for jobs to finish…', PAD.l + plotW / 2, PAD.t + plotH / 2);
  }
}

/** Under the mouse: a line at the second and a tooltip with its figures. */
function drawHover(ctx, { w, plotW, plotH, x }, { start, span, ok, fail, avg }) {
  if (hover === null || hover < PAD.l || hover > w - PAD.r) {
    els.tip.hidden = true;
    return;
  }
  const i = Math.min(span - 1, Math.max(0, Math.floor(((hover - PAD.l) / plotW) * span)));
  const xx = x(i + 0.5);
  ctx.strokeStyle = 'rgba(255,255,255,0.35)';
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(xx, PAD.t);
  ctx.lineTo(xx, PAD.t + plotH);
  ctx.stroke();
  els.tip.hidden = false;
  els.tip.replaceChildren(
    el('div', null, fmtClock((start + i) * 1000 + skew())),
    tipLine('finished', ok[i] + fail[i]),
    tipLine(STATE.FAILED, fail[i]),
    tipLine('10 s avg', fmtRate(avg[i])),
  );
  const tipW = els.tip.offsetWidth;
  els.tip.style.left = Math.min(Math.max(xx + 12, 0), w - tipW - 4) + 'px';
}

function chartFont() {
  // Computed once per resize: getComputedStyle in the render loop forces a style recalc.
  if (!fontCache) {
    const rootPx = parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
    fontCache = `${Math.max(10, Math.round(rootPx * 0.72))}px ${getComputedStyle(document.body).fontFamily}`;
  }
  return fontCache;
}

function tipLine(label, value) {
  const d = el('div', null, label + ' ');
  d.append(el('b', null, String(value)));
  return d;
}

function movingAverage(ok, fail, n) {
  const out = new Array(ok.length);
  let sum = 0;
  for (let i = 0; i < ok.length; i++) {
    sum += ok[i] + fail[i];
    if (i >= n) sum -= ok[i - n] + fail[i - n];
    out[i] = sum / Math.min(n, i + 1);
  }
  return out;
}
