// Admin · historical data: submit loads, watch active jobs live, cancel, failures, retry.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const { api, toast, esc, fmtTime } = window.TS;
  const $ = (id) => document.getElementById(id);
  const active = new Map(); // job_id -> job
  const TERMINAL = new Set(["completed", "failed", "cancelled"]);

  const target = (j) => { const p = j.params || {}; return p.universe ? `universe ${p.universe}` : (p.symbols || []).slice(0, 6).join(", ") + ((p.symbols || []).length > 6 ? "…" : "") || p.path || ""; };

  function renderActive() {
    const box = $("active-jobs");
    document.body.dataset.activeJobs = String(active.size);
    if (!active.size) { box.innerHTML = '<p class="empty">No active jobs.</p>'; return; }
    box.innerHTML = [...active.values()].map((j) => `
      <div class="job" data-job="${esc(j.job_id)}" style="margin-bottom:14px">
        <div class="toolbar"><strong>${esc(j.job_type)}</strong><span class="pill ${esc(j.status)}">${esc(j.status)}</span>
          <span class="muted small">${esc(target(j))}</span><span style="margin-left:auto"></span>
          <button class="small danger" data-cancel="${esc(j.job_id)}">Cancel</button></div>
        <div class="phase" style="grid-template-columns:1fr 160px"><div class="progress"><span style="width:${j.percent || 0}%"></span></div>
          <span class="small muted">${j.processed || 0}/${j.total || 0}${j.failed ? ` · ${j.failed} failed` : ""} · ${Math.round(j.percent || 0)}%</span></div>
      </div>`).join("");
    box.querySelectorAll("[data-cancel]").forEach((b) => { b.onclick = () => cancel(b.dataset.cancel); });
  }

  function renderJobs(jobs) {
    const body = $("jobs").querySelector("tbody");
    if (!jobs.length) { body.innerHTML = '<tr><td colspan="8" class="empty">No jobs yet.</td></tr>'; return; }
    body.innerHTML = jobs.map((j) => `<tr data-job="${esc(j.job_id)}"><td>${fmtTime(j.submitted_at)}</td><td>${esc(j.job_type)}</td>
      <td class="small">${esc(target(j))}</td><td><span class="pill ${esc(j.status)}">${esc(j.status)}</span></td>
      <td class="num">${j.processed}/${j.total}</td><td class="num">${j.failed}</td><td>${esc(j.requested_by || "")}</td>
      <td>${j.failed ? `<button class="small" data-failures="${esc(j.job_id)}">Failures</button>` : ""}</td></tr>`).join("");
    body.querySelectorAll("[data-failures]").forEach((b) => { b.onclick = () => showFailures(b.dataset.failures); });
  }

  async function refresh() {
    try {
      const [act, all] = await Promise.all([api("GET", "/api/jobs?active=true"), api("GET", "/api/jobs?limit=30")]);
      act.jobs.forEach((j) => active.set(j.job_id, j));
      [...active.keys()].forEach((id) => { const j = all.jobs.find((x) => x.job_id === id); if (j && TERMINAL.has(j.status)) active.delete(id); });
      renderActive(); renderJobs(all.jobs);
    } catch (e) { toast(`Could not load jobs: ${e.message}`, "error"); }
  }

  async function cancel(id) {
    try { await api("POST", `/api/jobs/${encodeURIComponent(id)}/cancel`); toast("Cancel requested.", "ok"); }
    catch (e) { toast(`Cancel failed: ${e.message}`, "error"); }
  }

  let failuresOf = null;
  async function showFailures(id) {
    try {
      const job = await api("GET", `/api/jobs/${encodeURIComponent(id)}`);
      failuresOf = id; $("failures-card").hidden = false; $("failures-job").textContent = id.slice(0, 8);
      $("failures").querySelector("tbody").innerHTML = job.failures.map((f) => `<tr><td>${esc(f.symbol)}</td><td>${esc(f.timeframe)}</td><td class="small">${esc(f.error || "")}</td><td>${fmtTime(f.updated_at)}</td></tr>`).join("") || '<tr><td colspan="4" class="empty">None.</td></tr>';
    } catch (e) { toast(e.message, "error"); }
  }
  $("btn-retry-job").onclick = async () => {
    if (!failuresOf) return;
    try { await api("POST", `/api/jobs/${encodeURIComponent(failuresOf)}/retry`); toast("Retry requested.", "ok"); }
    catch (e) { toast(`Retry failed: ${e.message}`, "error"); }
  };

  function showFields() {
    const kind = $("load-kind").value;
    $("f-symbols").hidden = kind !== "symbols"; $("f-universe").hidden = kind !== "universe";
    $("f-path").hidden = kind !== "file"; $("f-range").hidden = kind === "file"; $("f-timeframes").hidden = kind === "file";
  }
  $("load-kind").onchange = showFields; showFields();

  $("load-form").onsubmit = async (ev) => {
    ev.preventDefault();
    const kind = $("load-kind").value;
    const timeframes = [...$("load-timeframes").selectedOptions].map((o) => o.value);
    let body;
    if (kind === "file") body = { job_type: "file_import", path: $("load-path").value.trim() };
    else {
      body = { job_type: timeframes.length > 1 ? "multi_timeframe_load" : "historical_load", timeframes };
      if (kind === "symbols") body.symbols = $("load-symbols").value.split(/[\s,]+/).filter(Boolean);
      else body.universe = $("load-universe").value;
      if ($("load-start").value) { body.start = $("load-start").value + "T00:00:00Z"; if ($("load-end").value) body.end = $("load-end").value + "T00:00:00Z"; }
      else body.years = parseFloat($("load-years").value || "1");
    }
    try {
      const res = await api("POST", "/api/jobs", body);
      active.set(res.job_id, { job_id: res.job_id, job_type: body.job_type.replace("_load", " load"), status: "submitted", params: body, percent: 0, processed: 0, total: 0, failed: 0 });
      renderActive(); toast(`Job submitted (${res.job_id.slice(0, 8)}).`, "ok");
    } catch (e) { toast(`Not submitted: ${e.message}`, "error"); }
  };

  const live = window.TS.live;
  const upd = (m, patch) => {
    const id = m.data.job_id; const j = active.get(id) || { job_id: id, job_type: m.data.job_type || "job", params: {}, percent: 0, processed: 0, total: 0, failed: 0 };
    Object.assign(j, patch); active.set(id, j);
    if (TERMINAL.has(j.status)) { active.delete(id); refresh(); }
    renderActive();
  };
  live.on("job.submitted", (m) => upd(m, { status: "submitted", job_type: m.data.job_type, params: m.data.params }));
  live.on("job.started", (m) => upd(m, { status: "running", job_type: m.data.job_type }));
  live.on("job.progress", (m) => upd(m, { status: "running", total: m.data.total, processed: m.data.processed, failed: m.data.failed, percent: m.data.percent }));
  live.on("job.completed", (m) => { upd(m, { status: "completed" }); toast(`Job ${m.data.job_id.slice(0, 8)} completed.`, "ok"); });
  live.on("job.failed", (m) => { upd(m, { status: "failed" }); toast(`Job ${m.data.job_id.slice(0, 8)} failed: ${m.data.error}`, "error"); });
  live.on("job.cancelled", (m) => { upd(m, { status: "cancelled" }); toast(`Job ${m.data.job_id.slice(0, 8)} cancelled.`); });
  live.on("command.rejected", (m) => toast(`Refused: ${m.data.reason}`, "error"));
  live.on("resync", () => refresh());
  live.subscribe(["job", "command"]);
  refresh();
});
