// @ts-check
/**
 * pixelpipe demo page: uploads with real progress (via ./upload.js), results pushed over Server-Sent
 * Events, and an admin table of recent images. No framework: every node is built with textContent so
 * filenames and reason messages can never inject markup.
 */
import { deleteImage, listImages, uploadImage, UploadError } from './upload.js';

const UPLOAD_ENDPOINT = '/api/uploads';
const EVENTS_URL = '/api/events';
const IMAGES_URL = '/api/images';
const PROFILES_URL = '/api/profiles';
const MAX_CONCURRENT = 4;
// Only used while the event stream is down: events emitted during a gap are not replayed.
const FALLBACK_POLL_MS = 4000;

const STATUS_LABELS = /** @type {Record<string, string>} */ ({
  queued: 'Queued',
  uploading: 'Uploading',
  processing: 'Processing…',
  processed: 'Processed',
  failed: 'Failed',
  cancelled: 'Cancelled',
  error: 'Upload failed',
});
const TERMINAL = new Set(['processed', 'failed', 'cancelled', 'error']);

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const cardsEl = $('cards');
const announcer = $('announcer');

/**
 * @typedef {{ el: HTMLElement, file: File, controller: AbortController, id?: string, status: string,
 *   rendered?: string, refs: Record<string, HTMLElement> }} Card
 */

/* ---------- tiny DOM helper ---------- */

/**
 * @param {string} tag
 * @param {Record<string, string | number | boolean | undefined>} [attrs]
 * @param {...(Node | string | null | undefined | false)} children
 */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (name === 'class') el.className = String(value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) if (child) el.append(child);
  return el;
}

/* ---------- formatting ---------- */

/** @param {number | undefined} n */
function formatBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '—';
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = n / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** @param {number | undefined} ms */
function formatDuration(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '—';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** Ids are often time-ordered (ULID-like), so their heads collide; head+tail stays distinguishable. @param {string} id */
function shortId(id) {
  return id.length <= 12 ? id : `${id.slice(0, 4)}…${id.slice(-4)}`;
}

/** @param {string} message */
function announce(message) {
  announcer.textContent = '';
  // A fresh text node after clearing makes screen readers repeat identical messages too.
  requestAnimationFrame(() => {
    announcer.textContent = message;
  });
}

/* ---------- completions: SSE first, polling only while the stream is down ---------- */

const seenEventIds = new Set();
/** @type {Map<string, any>} latest manifest per image id (also for events that beat their card's id) */
const manifests = new Map();
/** @type {Map<string, Card>} */
const cardsById = new Map();
/** @type {Card[]} */
const cards = [];

/** @param {string} imageId @param {any} manifest */
function deliver(imageId, manifest) {
  if (!imageId || !manifest || typeof manifest !== 'object') return;
  manifests.set(imageId, manifest);
  const card = cardsById.get(imageId);
  if (card) renderManifest(card, manifest);
}

/** @param {string} raw */
function onEventData(raw) {
  let event;
  try {
    event = JSON.parse(raw);
  } catch {
    return;
  }
  if (!event || typeof event !== 'object' || typeof event.type !== 'string' || !event.type.startsWith('pixelpipe.image.')) return;
  // Delivery is at-least-once: the same CloudEvent id can arrive twice (redelivery, reconnect).
  if (event.id && seenEventIds.has(event.id)) return;
  if (event.id) seenEventIds.add(event.id);
  if (event.type === 'pixelpipe.image.deleted.v1') return onImageDeleted(event.subject ?? event.data?.id);
  deliver(event.subject ?? event.data?.id, event.data);
  scheduleRecentRefresh();
}

let source = /** @type {EventSource | null} */ (null);
let reconnectDelay = 1000;

function connectEvents() {
  setConnection('connecting', 'Connecting to events…');
  const es = new EventSource(EVENTS_URL);
  source = es;
  es.addEventListener('completion', (e) => onEventData(/** @type {MessageEvent} */ (e).data));
  // Tolerate servers that send unnamed events.
  es.addEventListener('message', (e) => onEventData(e.data));
  es.addEventListener('open', () => {
    reconnectDelay = 1000;
    setConnection('open', 'Live: completion events');
    // Anything that finished while we were disconnected was not replayed: catch up once.
    pollPending();
    scheduleRecentRefresh();
  });
  es.addEventListener('error', () => {
    if (es.readyState === EventSource.CONNECTING) {
      setConnection('connecting', 'Reconnecting to events…');
      return;
    }
    // CLOSED: the browser gave up (HTTP error or wrong content type), so retry ourselves with backoff.
    es.close();
    setConnection('closed', `Events offline · retrying in ${Math.round(reconnectDelay / 1000)} s`);
    setTimeout(connectEvents, reconnectDelay);
    reconnectDelay = Math.min(reconnectDelay * 2, 30_000);
  });
}

/** @param {'connecting' | 'open' | 'closed'} state @param {string} text */
function setConnection(state, text) {
  $('conn').dataset.state = state;
  $('conn-text').textContent = text;
}

async function pollPending() {
  const pending = cards.filter((c) => c.id && c.status === 'processing');
  await Promise.all(
    pending.map(async (card) => {
      try {
        const res = await fetch(`${IMAGES_URL}/${encodeURIComponent(/** @type {string} */ (card.id))}`, { cache: 'no-store' });
        if (res.status === 200) deliver(/** @type {string} */ (card.id), await res.json());
      } catch {
        /* still offline; the next tick retries */
      }
    }),
  );
}

setInterval(() => {
  if (source?.readyState !== EventSource.OPEN) pollPending();
}, FALLBACK_POLL_MS);

/* ---------- upload cards ---------- */

/** @param {File} file @returns {Card} */
function createCard(file) {
  const index = cards.length;
  const nameId = `card-${index}-name`;
  const refs = {
    status: h('span', { class: 'badge', 'data-testid': 'card-status', role: 'status' }, STATUS_LABELS.queued),
    cancel: h('button', { type: 'button', class: 'btn-quiet', 'data-testid': 'cancel', 'aria-label': `Cancel upload of ${file.name}` }, 'Cancel'),
    progress: h('progress', { 'data-testid': 'progress', max: 1, value: 0, 'aria-label': `Upload progress of ${file.name}` }),
    progressText: h('span', { class: 'pct', 'data-testid': 'progress-text' }, '0%'),
    bytes: h('span', { class: 'muted' }, formatBytes(file.size)),
    message: h('div', { class: 'message', hidden: true }),
    result: h('div', { class: 'result', hidden: true }),
  };
  const el = h(
    'li',
    { class: 'card', 'data-testid': 'card', 'data-status': 'uploading', 'data-phase': 'queued', 'aria-labelledby': nameId },
    h('div', { class: 'card-head' }, h('span', { class: 'file-name', id: nameId, title: file.name }, file.name || '(unnamed)'), refs.status, refs.cancel),
    h('div', { class: 'progress-row' }, refs.progress, refs.progressText, refs.bytes),
    refs.message,
    refs.result,
  );
  /** @type {Card} */
  const card = { el, file, controller: new AbortController(), status: 'queued', refs };
  refs.cancel.addEventListener('click', () => card.controller.abort());
  setStatus(card, 'queued');
  cards.push(card);
  cardsEl.append(el);
  return card;
}

/** @param {Card} card @param {string} status */
function setStatus(card, status) {
  card.status = status;
  // 'queued' is shown but reported as 'uploading': tests and tools see the documented status set only.
  card.el.dataset.status = status === 'queued' ? 'uploading' : status;
  card.el.dataset.phase = status;
  card.refs.status.textContent = STATUS_LABELS[status] ?? status;
  card.refs.status.className = `badge badge-${status}`;
  // Processing cannot be cancelled from here: once storage has the bytes the pipeline owns them.
  card.refs.cancel.hidden = !(status === 'queued' || status === 'uploading');
}

/** @param {Card} card @param {string} id */
function learnId(card, id) {
  if (card.id) return;
  card.id = id;
  card.el.dataset.imageId = id;
  cardsById.set(id, card);
  // The event may have beaten the upload response (fast local pipelines).
  const early = manifests.get(id);
  if (early) renderManifest(card, early);
}

/** @param {Card} card @param {{ loaded: number, total: number, fraction: number, id: string }} p */
function onProgress(card, p) {
  if (p.id) learnId(card, p.id);
  const progress = /** @type {HTMLProgressElement} */ (card.refs.progress);
  progress.value = p.fraction;
  // Floor, so "100%" only appears with the final call (fraction exactly 1: storage accepted the bytes).
  card.refs.progressText.textContent = `${Math.floor(p.fraction * 100)}%`;
  card.refs.bytes.textContent = `${formatBytes(p.loaded)} of ${formatBytes(p.total)}`;
}

/** @param {Card} card @param {string} code @param {string} message @param {string} [where] */
function showError(card, code, message, where) {
  card.refs.message.hidden = false;
  card.refs.message.className = 'message message-error';
  card.refs.message.replaceChildren(
    h('strong', { 'data-testid': 'error' }, code),
    h('span', {}, message),
    ...(where ? [h('span', { class: 'where' }, where)] : []),
  );
}

/** @param {Card} card */
async function runUpload(card) {
  if (card.controller.signal.aborted) return;
  setStatus(card, 'uploading');
  try {
    const result = await uploadImage(card.file, {
      endpoint: UPLOAD_ENDPOINT,
      profile: selectedProfile(),
      signal: card.controller.signal,
      onProgress: (p) => onProgress(card, p),
    });
    learnId(card, result.id);
    if (!TERMINAL.has(card.status)) setStatus(card, 'processing');
    scheduleRecentRefresh();
  } catch (err) {
    const e = /** @type {any} */ (err);
    if (e?.name === 'AbortError') {
      setStatus(card, 'cancelled');
      card.refs.progressText.textContent = 'Cancelled';
    } else {
      setStatus(card, 'error');
      if (err instanceof UploadError) {
        showError(card, err.code, err.message, `${err.stage} stage${err.status ? ` · HTTP ${err.status}` : ''}`);
      } else {
        // Not a rejection the pipeline reported: a bug worth a stack trace in the console.
        showError(card, 'unexpected', String(e?.message ?? err));
        console.error('upload failed', err);
      }
    }
    announce(`${card.file.name}: ${STATUS_LABELS[card.status]}`);
  }
}

/** @param {Card} card @param {any} m */
function renderManifest(card, m) {
  // Polling and events can hand over the same manifest; re-render only when it actually changed.
  const fingerprint = `${m.status}|${m.createdAt ?? ''}|${m.variants?.length ?? 0}`;
  if (card.rendered === fingerprint || card.status === 'cancelled') return;
  card.rendered = fingerprint;
  setStatus(card, m.status === 'failed' ? 'failed' : 'processed');
  announce(`${card.file.name}: ${STATUS_LABELS[card.status]}`);
  const result = card.refs.result;
  result.hidden = false;
  result.replaceChildren();

  if (m.status === 'failed') {
    result.append(
      h(
        'div',
        { class: 'failure', role: 'alert' },
        h('span', { class: 'failure-label' }, 'Processing failed'),
        h('code', { class: 'reason-code', 'data-testid': 'reason' }, m.reason?.code ?? 'unknown'),
        h('p', { class: 'reason-message' }, m.reason?.message ?? 'No reason was recorded.'),
      ),
    );
    if (m.analysis) result.append(analysisSummary(m.analysis));
    return;
  }

  const src = m.source ?? {};
  const ph = m.placeholder;
  const ratio = src.width && src.height ? `${src.width} / ${src.height}` : '4 / 3';
  const preview = h('div', { class: 'preview', style: `aspect-ratio: ${ratio}` });
  if (ph && typeof ph.dataUrl === 'string' && ph.dataUrl.startsWith('data:image/')) {
    preview.append(h('img', { class: 'placeholder', 'data-testid': 'placeholder', src: ph.dataUrl, alt: '', 'aria-hidden': 'true' }));
  }
  const meta = h(
    'p',
    { class: 'muted meta' },
    [src.format, src.width && src.height ? `${src.width}×${src.height}` : '', formatBytes(src.bytes), `in ${formatDuration(m.durationMs)}`]
      .filter(Boolean)
      .join(' · '),
  );

  const gallery = h('ul', { class: 'gallery', 'aria-label': `Variants of ${card.file.name}` });
  for (const v of m.variants ?? []) {
    const img = /** @type {HTMLImageElement} */ (
      h('img', {
        'data-testid': 'variant',
        'data-variant': v.name,
        'data-format': v.format,
        'data-width': v.width,
        'data-height': v.height,
        width: v.width,
        height: v.height,
        loading: 'lazy',
        decoding: 'async',
        alt: `${card.file.name}: ${v.name} variant, ${v.format}, ${v.width}×${v.height}`,
      })
    );
    // The thumbhash sits behind each variant until its real pixels arrive.
    if (ph?.dataUrl) img.style.backgroundImage = `url("${ph.dataUrl}")`;
    img.addEventListener('load', () => img.classList.add('loaded'), { once: true });
    img.addEventListener('error', () => img.classList.add('broken'), { once: true });
    if (v.url) img.src = v.url;
    const caption = `${v.name} · ${v.format} · ${v.width}×${v.height} · ${formatBytes(v.bytes)}${v.crop ? ` · crop ${v.crop.width}×${v.crop.height} at ${v.crop.left},${v.crop.top}` : ''}`;
    if (v.crop) img.dataset.crop = `${v.crop.left},${v.crop.top},${v.crop.width},${v.crop.height}`;
    const picture = v.url ? h('a', { href: v.url, target: '_blank', rel: 'noopener' }, img) : img;
    gallery.append(h('li', {}, h('figure', {}, picture, h('figcaption', {}, caption))));
  }
  const analysis = m.analysis ? [analysisView(m, card.file.name), analysisSummary(m.analysis)] : [];
  result.append(h('div', { class: 'result-grid' }, h('div', { class: 'preview-col' }, preview, meta, ...analysis), gallery));
}

/* ---------- analysis overlay ---------- */

/**
 * @typedef {{ left: number, top: number, width: number, height: number }} Box
 * @typedef {{ analyzer: string, ms: number, faces?: { box: Box, score: number }[], labels?: { name: string, score: number }[],
 *   moderation?: { verdict: string, categories: { name: string, score: number }[] }, error?: { code: string, message: string } }} Analysis
 */

/** @param {number} v */
const pct = (v) => `${(v * 100).toFixed(2)}%`;

/**
 * The original (its largest uncropped variant: the original itself stays private) with the detected face
 * boxes drawn over it, and the region each cropped variant shows, dashed. Boxes are fractions of the
 * oriented original and crops are its pixels, so both place as percentages on any uncropped rendition.
 * @param {any} m @param {string} filename
 */
function analysisView(m, filename) {
  /** @type {Analysis} */
  const a = m.analysis;
  const src = m.source ?? {};
  const whole = (m.variants ?? []).filter((/** @type {any} */ v) => !v.crop && v.url && (v.format === 'jpeg' || v.format === 'webp'));
  whole.sort((/** @type {any} */ x, /** @type {any} */ y) => x.width - y.width);
  const shown = whole.find((/** @type {any} */ v) => v.width >= 320) ?? whole[whole.length - 1];
  const frame = h('div', { class: 'analysis-frame', 'data-testid': 'analysis-frame', style: `aspect-ratio: ${src.width ?? 4} / ${src.height ?? 3}` });
  if (shown) frame.append(h('img', { src: shown.url, alt: `${filename} with the detected faces outlined`, decoding: 'async' }));
  const seen = new Set();
  for (const v of m.variants ?? []) {
    if (!v.crop || !src.width || !src.height || seen.has(v.name)) continue;
    seen.add(v.name);
    const c = v.crop;
    frame.append(
      h('span', {
        class: 'crop-box',
        'data-testid': 'crop-box',
        'data-variant': v.name,
        title: `${v.name}: crop ${c.width}×${c.height} at ${c.left},${c.top}`,
        style: `left:${pct(c.left / src.width)};top:${pct(c.top / src.height)};width:${pct(c.width / src.width)};height:${pct(c.height / src.height)}`,
      }),
    );
  }
  for (const f of a.faces ?? []) {
    const b = f.box;
    frame.append(
      h('span', {
        class: 'face-box',
        'data-testid': 'face-box',
        title: `face, score ${f.score.toFixed(2)}`,
        style: `left:${pct(b.left)};top:${pct(b.top)};width:${pct(b.width)};height:${pct(b.height)}`,
      }),
    );
  }
  return frame;
}

/**
 * What the analyzer said, in words: faces, labels, the moderation verdict (or that it was not asked for),
 * and the error when the analysis failed and the image was processed without it.
 * @param {Analysis} a
 */
function analysisSummary(a) {
  const faces = a.faces ? `${a.faces.length} face${a.faces.length === 1 ? '' : 's'}` : 'faces not analysed';
  const top = (a.labels ?? []).slice(0, 5).map((l) => `${l.name} ${Math.round(l.score * 100)}%`);
  const labels = !a.labels ? 'not analysed' : top.join(', ') || 'none';
  const verdict = a.moderation?.verdict ?? 'off';
  return h(
    'dl',
    { class: 'analysis', 'data-testid': 'analysis' },
    h('dt', {}, 'Faces'),
    h('dd', { 'data-testid': 'faces' }, faces),
    h('dt', {}, 'Labels'),
    h('dd', { 'data-testid': 'labels' }, labels),
    h('dt', {}, 'Moderation'),
    h('dd', {}, h('span', { class: `verdict verdict-${verdict}`, 'data-testid': 'moderation' }, verdict)),
    a.error ? h('dt', {}, 'Analysis error') : null,
    a.error ? h('dd', { class: 'analysis-error', 'data-testid': 'analysis-error' }, `${a.error.code}: ${a.error.message}`) : null,
    h('dt', {}, 'Analyzer'),
    h('dd', { class: 'muted' }, `${a.analyzer} · ${formatDuration(a.ms)}`),
  );
}

/* ---------- concurrency-limited queue ---------- */

/** @type {Card[]} */
const queue = [];
let active = 0;

function pump() {
  while (active < MAX_CONCURRENT && queue.length > 0) {
    const card = /** @type {Card} */ (queue.shift());
    if (card.controller.signal.aborted) continue;
    active++;
    runUpload(card).finally(() => {
      active--;
      pump();
    });
  }
}

/** @param {Iterable<File>} files */
function addFiles(files) {
  const list = [...files];
  if (list.length === 0) return;
  for (const file of list) {
    const card = createCard(file);
    // A card cancelled while still queued never reaches runUpload, so settle it here.
    card.controller.signal.addEventListener(
      'abort',
      () => {
        if (card.status === 'queued') {
          setStatus(card, 'cancelled');
          card.refs.progressText.textContent = 'Cancelled';
        }
      },
      { once: true },
    );
    queue.push(card);
  }
  announce(`${list.length} file${list.length === 1 ? '' : 's'} added`);
  pump();
}

/* ---------- recent images (admin view) ---------- */

let recentTimer = 0;
let recentInFlight = false;
let recentAgain = false;

function scheduleRecentRefresh() {
  // Completions come in bursts; one request per burst is plenty.
  clearTimeout(recentTimer);
  recentTimer = window.setTimeout(refreshRecent, 150);
}

async function refreshRecent() {
  if (recentInFlight) {
    recentAgain = true;
    return;
  }
  recentInFlight = true;
  const table = /** @type {HTMLElement} */ (document.querySelector('[data-testid="recent-table"]'));
  const body = $('recent-body');
  table.setAttribute('aria-busy', 'true');
  try {
    const { images } = await listImages({ endpoint: IMAGES_URL, limit: 50 });
    const rows = images.map((img) => withDeleteButton(recentRow(rowFromListItem(img)), img.id));
    body.replaceChildren(...(rows.length ? rows : [emptyRow('No images yet. Upload one to get started.')]));
  } catch (err) {
    body.replaceChildren(emptyRow(`Could not load recent images (${/** @type {Error} */ (err).message}).`));
  } finally {
    table.setAttribute('aria-busy', 'false');
    recentInFlight = false;
    if (recentAgain) {
      recentAgain = false;
      refreshRecent();
    }
  }
}

/** @param {string} text */
const emptyRow = (text) => h('tr', { class: 'empty' }, h('td', { colspan: 7 }, text));

/** @param {any} img */
function recentRow(img) {
  const created = img.createdAt ? new Date(img.createdAt) : null;
  return h(
    'tr',
    { 'data-testid': 'recent-row', 'data-status': img.status, 'data-image-id': img.id, class: cardsById.has(img.id) ? 'mine' : undefined },
    h('td', {}, h('code', { title: `${img.id}${created ? ` · ${created.toLocaleString()}` : ''}` }, shortId(String(img.id)))),
    h('td', { class: 'filename', title: img.filename ?? '' }, img.filename ?? '—'),
    h('td', {}, h('span', { class: `badge badge-${img.status}` }, img.status)),
    h('td', { title: img.reason?.message ?? '' }, img.reason?.code ? h('code', { class: 'reason-code small' }, img.reason.code) : '—'),
    h('td', { class: 'num' }, typeof img.variants === 'number' ? String(img.variants) : '—'),
    h('td', { class: 'num' }, formatDuration(img.durationMs)),
  );
}

/**
 * A row of the images API (`GET /api/images`) in the shape {@link recentRow} shows.
 * @param {{ id: string, status: string, uploadedAt?: string, manifest?: any }} item
 */
function rowFromListItem(item) {
  const m = item.manifest;
  return {
    id: item.id,
    status: item.status,
    createdAt: item.uploadedAt,
    filename: m?.source?.filename,
    reason: m?.reason,
    variants: Array.isArray(m?.variants) ? m.variants.length : undefined,
    durationMs: m?.durationMs,
  };
}

/**
 * Adds the delete button to a row: `DELETE /api/images/{id}` removes the original; the row goes once
 * the cascade's `deleted` event arrives.
 * @param {HTMLElement} tr @param {string} id
 */
function withDeleteButton(tr, id) {
  const button = h('button', { type: 'button', class: 'btn-quiet', 'data-testid': 'delete-button', 'aria-label': `Delete image ${shortId(id)}` }, 'Delete');
  button.addEventListener('click', async () => {
    button.setAttribute('disabled', '');
    try {
      const accepted = await deleteImage(id, { endpoint: IMAGES_URL });
      tr.dataset.status = 'deleting';
      announce(accepted ? `Deleting image ${shortId(id)}…` : `Image ${shortId(id)} is already gone.`);
      if (!accepted) scheduleRecentRefresh();
    } catch (err) {
      button.removeAttribute('disabled');
      announce(`Could not delete image ${shortId(id)}: ${/** @type {Error} */ (err).message}`);
    }
  });
  tr.append(h('td', {}, button));
  return tr;
}

/** A `deleted` event: the image and everything derived from it are gone. @param {string | undefined} id */
function onImageDeleted(id) {
  if (!id) return;
  manifests.delete(id);
  const card = cardsById.get(id);
  if (card) card.el.dataset.deleted = 'true';
  announce(`Image ${shortId(id)} deleted.`);
  scheduleRecentRefresh();
}

/* ---------- wiring ---------- */

const input = /** @type {HTMLInputElement} */ ($('file-input'));
input.addEventListener('change', () => {
  if (input.files) addFiles(input.files);
  // Reset so choosing the same file again still fires `change`.
  input.value = '';
});

const hasFiles = (/** @type {DragEvent} */ e) => !!e.dataTransfer && [...e.dataTransfer.types].includes('Files');
let dragDepth = 0;
// The whole page is a drop target, so a near miss never navigates away to the dropped file.
document.addEventListener('dragenter', (e) => {
  if (!hasFiles(e)) return;
  dragDepth++;
  document.body.classList.add('dragging');
});
document.addEventListener('dragleave', () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (dragDepth === 0) document.body.classList.remove('dragging');
});
document.addEventListener('dragover', (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
});
document.addEventListener('drop', (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  dragDepth = 0;
  document.body.classList.remove('dragging');
  if (e.dataTransfer?.files) addFiles(e.dataTransfer.files);
});

$('refresh').addEventListener('click', () => refreshRecent());

/* ---------- upload profiles ---------- */

/** Fills the profile selector from the dev server; without it (or with one profile) the picker stays hidden. */
async function loadProfiles() {
  try {
    const res = await fetch(PROFILES_URL, { headers: { accept: 'application/json' } });
    if (!res.ok) return;
    const body = /** @type {{ profiles?: unknown, default?: unknown }} */ (await res.json());
    const names = Array.isArray(body.profiles) ? body.profiles.filter((n) => typeof n === 'string') : [];
    if (names.length < 2) return;
    const select = /** @type {HTMLSelectElement} */ ($('profile-select'));
    for (const name of names) select.append(h('option', { value: name, selected: name === body.default }, name));
    $('profile-picker').hidden = false;
  } catch {
    /* no selector: uploads use the default profile */
  }
}

/** The chosen profile, or undefined (the function's default) while the selector is hidden. */
function selectedProfile() {
  const picker = $('profile-picker');
  return picker.hidden ? undefined : /** @type {HTMLSelectElement} */ ($('profile-select')).value || undefined;
}

connectEvents();
refreshRecent();
loadProfiles();
