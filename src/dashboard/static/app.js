// Ferry dashboard: plain browser JavaScript, no build step, nothing loaded from elsewhere.
// Data comes from /api/overview; /api/events (server-sent events from Redis) says when to
// fetch again and carries the fine-grained progress of the step running now. What the states
// mean (categories, which can be retried) comes with the overview: the page keeps no copy.
'use strict';

const state = { overview: null, live: new Map(), selected: null, detail: null, view: 'migrations' };
const $ = (sel) => document.querySelector(sel);

function esc(v) {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}
function bytes(n) {
  if (n === undefined || n === null) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
function dur(ms) {
  if (ms === undefined || ms === null) return '';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}
function usToMs(us) {
  return us === undefined || us === null ? '' : `${(us / 1000).toFixed(1)} ms`;
}
function time(ms) {
  return ms ? new Date(ms).toLocaleTimeString() : '';
}

/** The record's progress, made finer by the latest event of the step it is at. */
function progressOf(m) {
  const l = state.live.get(m.id);
  const moving = m.category === 'running';
  if (!moving || !l || l.step !== m.step) return { percent: m.percent, bytes: m.bytes, total: undefined };
  return { percent: Math.max(m.percent, l.percent ?? 0), bytes: l.bytes ?? m.bytes, total: l.totalBytes };
}

function elapsed(m) {
  return m.finishedAt ? m.finishedAt - m.createdAt : Date.now() - m.createdAt;
}

function retryButton(m) {
  const meaning = state.overview.vocabulary.states[m.state];
  if (!meaning || !meaning.retryable) return '';
  const ro = state.overview.readOnly;
  return `<button class="retry" data-retry="${esc(m.id)}" ${ro ? 'disabled title="read-only dashboard"' : 'title="start a new migration of this container"'}>Retry</button>`;
}

function renderCounts() {
  const c = state.overview.counts;
  $('#counts').innerHTML = state.overview.vocabulary.categories.map((k) => `<div class="count ${k}" data-count="${k}"><span class="muted">${k}</span><b>${c[k]}</b></div>`).join('');
}

function renderMigrations() {
  const list = state.overview.migrations;
  $('#no-migrations').hidden = list.length > 0;
  $('#migrations tbody').innerHTML = list
    .map((m) => {
      const p = progressOf(m);
      const barClass = m.category === 'done' ? 'done' : m.category === 'failed' ? 'failed' : '';
      const b = p.bytes !== undefined ? `${bytes(p.bytes)}${p.total ? ` / ${bytes(p.total)}` : ''}` : '';
      const row = `<tr data-id="${esc(m.id)}" data-state="${esc(m.state)}" data-step="${esc(m.step)}" data-category="${m.category}" class="cat-${m.category}${state.selected === m.id ? ' selected' : ''}">
        <td><span class="pill ${esc(m.state)}">${esc(m.state)}</span></td>
        <td class="mono">${esc(m.id)}</td><td>${esc(m.container)}</td><td>${esc(m.from)} → ${esc(m.to)}</td>
        <td>${m.category === 'running' ? esc(m.step) : m.category === 'queued' ? 'waiting' : m.category === 'failed' ? `at ${esc(m.step)}` : ''}</td>
        <td class="wide"><div class="bar ${barClass}"><span style="width:${p.percent}%"></span><em>${p.percent}%</em></div></td>
        <td>${esc(b)}</td><td>${dur(elapsed(m))}</td><td>${m.downtimeMs !== undefined ? dur(m.downtimeMs) : ''}</td>
        <td>${retryButton(m)}</td></tr>`;
      const err = m.category === 'failed' && m.error ? `<tr class="cat-failed errrow" data-for="${esc(m.id)}"><td></td><td colspan="9" class="err">${esc(m.error)}</td></tr>` : '';
      return row + err;
    })
    .join('');
}

function statsBlock(title, s) {
  if (!s) return '';
  const parts = [
    ['frozen', usToMs(s.frozenUs)],
    ['memory dump', usToMs(s.memdumpUs)],
    ['memory write', usToMs(s.memwriteUs)],
    ['pages written', s.pagesWritten ?? ''],
    ['restore', usToMs(s.restoreUs)],
    ['runtime', usToMs(s.runtimeDurationUs)],
    ['podman', usToMs(s.podmanDurationUs)],
  ].filter(([, v]) => v !== '');
  return `<div><span>${esc(title)}</span>${parts.map(([k, v]) => `${esc(k)} ${esc(v)}`).join(' · ') || '—'}</div>`;
}

function renderDetail() {
  const box = $('#detail');
  const d = state.detail;
  if (!d || d.migration.id !== state.selected) {
    box.hidden = true;
    return;
  }
  const m = d.migration;
  const p = progressOf(m);
  box.hidden = false;
  box.dataset.id = m.id;
  box.dataset.state = m.state;
  box.innerHTML = `<h2>${esc(m.container)} <span class="muted">${esc(m.from)} → ${esc(m.to)}</span> <span class="pill ${esc(m.state)}">${esc(m.state)}</span> ${retryButton(m)}</h2>
    <div class="grid">
      <div><span>migration</span><span class="mono" style="color:inherit">${esc(m.id)}</span></div>
      <div><span>created</span>${esc(new Date(m.createdAt).toLocaleString())}</div>
      <div><span>elapsed</span>${dur(elapsed(m))}</div>
      <div><span>progress</span>${p.percent}%${m.category === 'running' ? ` (${esc(m.step)})` : ''}</div>
      <div><span>downtime (frozen → answering)</span>${m.downtimeMs !== undefined ? dur(m.downtimeMs) : '—'}</div>
      <div><span>bytes transferred</span>${bytes(p.bytes) || '—'}</div>
      ${m.archive ? `<div><span>archive</span>${esc(bytes(m.archive.bytes))} <span class="mono" style="display:inline;color:inherit">${esc(m.archive.sha256.slice(0, 12))}…</span></div>` : ''}
      ${m.batchId ? `<div><span>batch</span>${esc(m.batchId)}</div>` : ''}
      ${statsBlock('CRIU checkpoint', m.checkpointStats)}
      ${statsBlock('CRIU restore', m.restoreStats)}
    </div>
    ${m.error ? `<div class="error">${esc(m.error)}</div>` : ''}
    ${m.warnings.map((w) => `<div class="muted">warning: ${esc(w)}</div>`).join('')}
    <table class="steps"><thead><tr><th>Step</th><th>Host</th><th>Attempt</th><th>Started</th><th>Took</th><th>Bytes</th><th>Result</th></tr></thead><tbody>
    ${
      m.steps
        .map(
          (
            s,
          ) => `<tr data-step="${esc(s.step)}"><td>${esc(s.step)}</td><td>${esc(s.host)}</td><td>${s.attempt}</td><td>${time(s.startedAt)}</td><td>${s.durationMs !== undefined ? dur(s.durationMs) : 'running'}</td><td>${bytes(s.bytes)}</td>
        <td>${s.ok === undefined ? '<span class="pill running">running</span>' : s.ok ? '<span class="pill succeeded">ok</span>' : `<span class="pill failed">failed</span> ${esc(s.error)}`}</td></tr>`,
        )
        .join('') || '<tr><td colspan="7" class="none">not started</td></tr>'
    }
    </tbody></table>`;
}

function batchCards(list, kind) {
  if (!list.length) return `<p class="none">none</p>`;
  return `<div class="cards">${list
    .map(({ batch: b, counts: n }) => {
      const total = b.items.length;
      const pct = total ? Math.round(((n.done + n.failed) / total) * 100) : 0;
      return `<div class="card" data-${kind}="${esc(b.id)}"><h3>${esc(b.id)} <span class="pill ${b.state === 'running' ? 'running' : n.failed ? 'failed' : 'succeeded'}">${esc(b.state)}</span></h3>
        ${b.drainHost ? `<div class="muted">host ${esc(b.drainHost)}</div>` : ''}
        <div class="bar ${n.failed ? 'failed' : b.state === 'done' ? 'done' : ''}"><span style="width:${pct}%"></span><em>${n.done + n.failed}/${total}</em></div>
        <div class="muted">${n.done} done · ${n.running} running · ${n.remaining} queued · ${n.failed} failed</div></div>`;
    })
    .join('')}</div>`;
}

function renderFleet() {
  const o = state.overview;
  $('#batches').innerHTML = batchCards(o.batches, 'batch');
  $('#drains').innerHTML = batchCards(o.drains, 'drain');
  $('#schedules').innerHTML = o.schedules.length
    ? `<table><thead><tr><th>Schedule</th><th>Host</th><th>When</th><th>Next</th><th>State</th></tr></thead><tbody>${o.schedules
        .map((s) => {
          const when = s.kind === 'cron' ? `cron ${s.pattern ?? '?'} (UTC)` : 'once';
          const what = s.to && s.to.length ? `to ${s.to.join(', ')}` : 'scheduled';
          return `<tr><td class="mono">${esc(s.id)}</td><td>${esc(s.host)}</td><td>${esc(when)}</td><td>${s.next ? esc(new Date(s.next).toLocaleString()) : ''}</td><td>${esc(what)}</td></tr>`;
        })
        .join('')}</tbody></table>`
    : `<p class="none">none</p>`;
}

function renderHosts() {
  $('#hosts').innerHTML = `<div class="cards">${state.overview.hosts
    .map((h) => {
      const q = h.queue;
      return `<div class="card" data-host="${esc(h.name)}"><h3><span class="dot ${h.workers > 0 ? 'up' : 'down'}"></span>${esc(h.name)} <span class="muted">${esc(h.address)}</span>
        ${h.cordon.cordoned ? `<span class="pill needs-attention" title="${esc(h.cordon.reason)}">cordoned</span>` : ''}</h3>
        <div>${h.workers > 0 ? `worker alive (${h.workers})` : '<b style="color:var(--bad)">no worker</b>'} · ${h.cordon.cordoned ? `cordoned${h.cordon.reason ? `: ${esc(h.cordon.reason)}` : ''}` : 'not cordoned'}</div>
        <div class="muted">queue: ${q.active ?? 0} active · ${(q.waiting ?? 0) + (q.prioritized ?? 0)} waiting · ${q.delayed ?? 0} delayed · ${q.failed ?? 0} failed</div>
        <div style="margin-top:6px">Moved here by Ferry:</div>
        ${h.containers.length ? `<ul>${h.containers.map((c) => `<li>${esc(c.name)} <span class="muted mono">${esc(c.migrationId)}</span></li>`).join('')}</ul>` : '<div class="none">none</div>'}</div>`;
    })
    .join('')}</div>`;
}

function render() {
  if (!state.overview) return;
  $('#prefix').textContent = `prefix ${state.overview.prefix}`;
  $('#readonly').hidden = !state.overview.readOnly;
  renderCounts();
  if (state.view === 'migrations') {
    renderMigrations();
    renderDetail();
  } else if (state.view === 'fleet') renderFleet();
  else if (state.view === 'hosts') renderHosts();
  $('#updated').textContent = `updated ${new Date(state.overview.generatedAt).toLocaleTimeString()}`;
}

async function getJson(url, init) {
  const res = await fetch(url, { credentials: 'same-origin', ...init });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || `${res.status} ${res.statusText}`);
  return body;
}

let loading = null;
let again = false;
/** At most one overview request at a time; a request asked for meanwhile runs right after. */
function refresh() {
  if (loading) {
    again = true;
    return loading;
  }
  loading = (async () => {
    try {
      state.overview = await getJson('api/overview');
      if (state.selected) state.detail = await getJson(`api/migrations/${encodeURIComponent(state.selected)}`);
      render();
    } catch (e) {
      $('#updated').textContent = `update failed: ${e.message}`;
    } finally {
      loading = null;
      if (again) {
        again = false;
        refresh();
      }
    }
  })();
  return loading;
}

function connect() {
  const es = new EventSource('api/events');
  es.onopen = () => $('#live').classList.add('on');
  es.onerror = () => $('#live').classList.remove('on');
  es.onmessage = (msg) => {
    const ev = JSON.parse(msg.data);
    if (ev.step) {
      const cur = state.live.get(ev.migrationId);
      const same = cur && cur.step === ev.step;
      state.live.set(ev.migrationId, {
        step: ev.step,
        percent: ev.percent ?? (same ? cur.percent : undefined),
        bytes: ev.bytes ?? (same ? cur.bytes : undefined),
        totalBytes: ev.totalBytes ?? (same ? cur.totalBytes : undefined),
      });
    }
    if (ev.type === 'progress') render();
    else refresh();
  };
}

function showView(name) {
  state.view = ['migrations', 'fleet', 'hosts'].includes(name) ? name : 'migrations';
  for (const v of document.querySelectorAll('.view')) v.hidden = v.id !== `view-${state.view}`;
  for (const a of document.querySelectorAll('nav a[data-view]')) a.classList.toggle('active', a.dataset.view === state.view);
  render();
}

function askRetry(id) {
  const m = state.overview.migrations.find((x) => x.id === id) || (state.detail && state.detail.migration);
  const dlg = $('#confirm');
  $('#confirm-text').textContent = `Start a new migration of ${m.container} from ${m.from} to ${m.to}? (${id} ended ${m.state}.)`;
  dlg.onclose = async () => {
    if (dlg.returnValue !== 'ok') return;
    try {
      const res = await getJson(`api/migrations/${encodeURIComponent(id)}/retry`, { method: 'POST', headers: { 'X-Ferry-Confirm': id } });
      state.selected = res.id;
      await refresh();
    } catch (e) {
      alert(`Retry failed: ${e.message}`);
    }
  };
  dlg.returnValue = '';
  dlg.showModal();
}

document.addEventListener('click', (e) => {
  const retry = e.target.closest('[data-retry]');
  if (retry) {
    e.stopPropagation();
    if (!retry.disabled) askRetry(retry.dataset.retry);
    return;
  }
  const row = e.target.closest('#migrations tbody tr[data-id]');
  if (row) {
    state.selected = state.selected === row.dataset.id ? null : row.dataset.id;
    state.detail = null;
    refresh();
  }
});
window.addEventListener('hashchange', () => showView(location.hash.slice(1)));

showView(location.hash.slice(1));
refresh();
connect();
// Elapsed times move on their own; the overview is fetched again now and then in case an
// event was missed (a reconnect, a section fed by something other than migration events).
setInterval(render, 1000);
setInterval(refresh, 5000);
