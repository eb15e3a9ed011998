// Admin · daily processing: current run with per-phase bars, triggers, schedule, history.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const { api, toast, esc, fmtTime, fmtDur } = window.TS;
  const $ = (id) => document.getElementById(id);
  let run = null;

  function setBar(el, pct, status) {
    if (!el) return;
    el.querySelector("span").style.width = `${Math.max(0, Math.min(100, pct || 0))}%`;
    el.setAttribute("aria-valuenow", String(Math.round(pct || 0)));
    el.className = "progress " + (status || "");
  }

  function renderRun() {
    const active = run && (run.status === "pending" || run.status === "running");
    $("btn-cancel").disabled = !active;
    $("run-status").textContent = run ? run.status : "none";
    $("run-status").className = "pill " + (run ? run.status : "");
    document.body.dataset.runStatus = run ? run.status : "none";
    document.body.dataset.runId = run ? run.run_id : "";
    if (!run) { $("run-meta").textContent = "No run yet."; return; }
    $("run-meta").textContent = `${run.trigger_type || ""} · ${run.requested_by || ""} · started ${fmtTime(run.started_at || run.created_at)}`;
    let sum = 0, n = 0;
    (run.phase_details || []).forEach((p) => {
      setBar($(`bar-${p.phase}`), p.percent, p.status);
      const txt = $(`text-${p.phase}`);
      if (txt) txt.textContent = `${p.status} · ${p.processed}/${p.total}${p.failed ? ` · ${p.failed} failed` : ""}`;
      sum += p.percent || 0; n += 1;
    });
    document.querySelectorAll("#phases .phase").forEach((row) => {
      row.style.display = (run.phase_details || []).some((p) => p.phase === row.dataset.phase) ? "" : "none";
    });
    // every planned phase weighs the same, also those not started yet (as the API computes it)
    const planned = Math.max(n, (run.phases || []).length);
    const overall = run.status === "completed" ? 100 : (planned ? sum / planned : 0);
    setBar($("overall-bar"), overall, run.status === "completed" || run.status === "failed" ? run.status : "");
    $("overall-text").textContent = `${Math.round(overall)}%`;
    $("run-error").textContent = run.error_message ? `Error: ${run.error_message}` : "";
  }

  function renderMarket(m) {
    if (!m || m.state === "unknown") { $("market-body").textContent = "Market calendar unavailable."; return; }
    const label = { open: "Open", closed: "Closed", early_close: "Open · early close" }[m.state] || m.state;
    $("market-body").innerHTML = `<p><span class="pill ${esc(m.state)}" id="market-state">${esc(label)}</span>
      ${m.early_close_today ? '<span class="pill early_close">early close today</span>' : ""}</p>
      <dl class="kv"><dt>Next open</dt><dd>${fmtTime(m.next_open)}</dd><dt>Next close</dt><dd>${fmtTime(m.next_close)}</dd>
      <dt>Last complete session</dt><dd>${esc(m.last_complete_session)}</dd></dl>`;
  }

  function renderSchedule(s) {
    if (!s) { $("sched-next").textContent = "No schedule stored yet (the scheduler creates it)."; return; }
    $("sched-enabled").checked = !!s.enabled;
    $("sched-time").value = s.run_at;
    const chosen = new Set(s.universes || []);
    [...$("sched-universes").options].forEach((o) => { o.selected = chosen.has(o.value); });
    $("sched-next").textContent = `Next run: ${s.enabled ? fmtTime(s.next_run_at) : "disabled"} · updated by ${s.updated_by || "—"}`;
  }

  function renderHistory(runs) {
    const body = $("history").querySelector("tbody");
    if (!runs.length) { body.innerHTML = '<tr><td colspan="9" class="empty">No runs yet.</td></tr>'; return; }
    body.innerHTML = runs.map((r) => `<tr data-run="${esc(r.run_id)}">
      <td>${fmtTime(r.started_at || r.created_at)}</td><td>${esc(r.trigger_type)}</td>
      <td><span class="pill ${esc(r.status)}">${esc(r.status)}</span></td><td>${esc((r.phases || []).join(", "))}</td>
      <td class="num">${fmtDur(r.duration_seconds)}</td><td class="num">${r.symbols_processed}/${r.symbols_total}</td>
      <td class="num">${r.symbols_failed || 0}</td><td class="num">${r.patterns_detected || 0}</td>
      <td class="small">${esc(r.error_message || "")}</td></tr>`).join("");
  }

  async function refresh() {
    try {
      const st = await api("GET", "/api/processing/daily/status");
      run = st.run; renderRun(); renderMarket(st.market); renderSchedule(st.schedule);
      $("failures-count").textContent = st.open_failures ? `${st.open_failures} open failures` : "no open failures";
      $("as-of").textContent = `as of ${fmtTime(st.as_of)}`;
      const h = await api("GET", "/api/processing/daily/history?limit=20");
      renderHistory(h.runs);
    } catch (e) { toast(`Could not load status: ${e.message}`, "error"); }
  }

  function alertBox(message) {
    const div = document.createElement("div");
    div.className = "alert error"; div.textContent = message;
    $("alerts").prepend(div);
    setTimeout(() => div.remove(), 30000);
  }

  async function trigger(url, label) {
    const universes = [...$("trigger-universes").selectedOptions].map((o) => o.value);
    const body = universes.length ? { universes } : {};
    try {
      const res = await api("POST", url, body);
      toast(`${label} requested (run ${res.run_id || res.command_id}).`, "ok");
      if (res.run_id && url.endsWith("/daily/trigger")) {
        run = { run_id: res.run_id, status: "pending", trigger_type: "manual", phase_details: [] };
        renderRun();
      }
    } catch (e) { toast(`${label} failed: ${e.message}`, "error"); }
  }

  $("btn-full").onclick = () => trigger("/api/processing/daily/trigger", "Full run");
  $("btn-import").onclick = () => trigger("/api/processing/import/trigger", "Import");
  $("btn-indicators").onclick = () => trigger("/api/processing/indicators/trigger", "Indicators");
  $("btn-patterns").onclick = () => trigger("/api/processing/patterns/trigger", "Patterns");
  $("btn-retry").onclick = async () => {
    try { await api("POST", "/api/processing/import/retry", {}); toast("Retry of failed imports requested.", "ok"); }
    catch (e) { toast(`Retry failed: ${e.message}`, "error"); }
  };
  $("btn-cancel").onclick = async () => {
    if (!run) return;
    try { await api("POST", "/api/processing/daily/cancel", { run_id: run.run_id }); toast("Cancel requested.", "ok"); }
    catch (e) { toast(`Cancel failed: ${e.message}`, "error"); }
  };
  $("schedule-form").onsubmit = async (ev) => {
    ev.preventDefault();
    const body = { enabled: $("sched-enabled").checked, run_at: $("sched-time").value,
      universes: [...$("sched-universes").selectedOptions].map((o) => o.value) };
    try { await api("POST", "/api/processing/daily/schedule", body); toast("Schedule change sent.", "ok"); }
    catch (e) { toast(`Schedule not saved: ${e.message}`, "error"); }
  };

  // Live events: update in place, re-read the authoritative state when a run ends.
  function phaseOf(d) {
    if (!run) return null;
    run.phase_details = run.phase_details || [];
    let p = run.phase_details.find((x) => x.phase === d.phase);
    if (!p) { p = { phase: d.phase, status: "pending", total: 0, processed: 0, failed: 0, percent: 0 }; run.phase_details.push(p); }
    return p;
  }
  const live = window.TS.live;
  live.on("run.started", (m) => {
    const d = m.data;
    run = { run_id: d.run_id, status: "running", trigger_type: d.trigger_type, requested_by: d.requested_by,
      started_at: m.ts, phases: d.phases, phase_details: d.phases.map((p) => ({ phase: p, status: "pending", total: 0, processed: 0, failed: 0, percent: 0 })) };
    renderRun();
  });
  live.on("run.phase_started", (m) => { const p = phaseOf(m.data); if (!p || run.run_id !== m.data.run_id) return; p.status = "running"; p.total = m.data.total; renderRun(); });
  live.on("run.phase_progress", (m) => {
    if (!run || run.run_id !== m.data.run_id) return;
    const p = phaseOf(m.data); Object.assign(p, { status: "running", total: m.data.total, processed: m.data.processed, failed: m.data.failed, percent: m.data.percent });
    run.status = "running"; renderRun();
  });
  live.on("run.phase_completed", (m) => {
    if (!run || run.run_id !== m.data.run_id) return;
    const p = phaseOf(m.data); Object.assign(p, { status: "completed", processed: m.data.processed, failed: m.data.failed, percent: 100 }); renderRun();
  });
  live.on("run.phase_failed", (m) => { alertBox(`Phase ${m.data.phase} failed: ${m.data.error}`); if (run && run.run_id === m.data.run_id) { phaseOf(m.data).status = "failed"; renderRun(); } });
  ["run.completed", "run.failed", "run.cancelled"].forEach((t) => live.on(t, (m) => {
    if (run && run.run_id === m.data.run_id) {
      run.status = t.split(".")[1];
      if (run.status === "completed") (run.phase_details || []).forEach((p) => { if (p.status !== "failed") { p.status = "completed"; p.percent = 100; } });
      renderRun();
    }
    if (t === "run.failed") alertBox(`Run failed: ${m.data.error}`);
    refresh();
  }));
  live.on("command.rejected", (m) => { toast(`Command refused: ${m.data.reason}`, "error"); alertBox(`${m.data.command_type}: ${m.data.reason}`); });
  live.on("schedule.changed", () => refresh());
  live.on("resync", () => refresh());
  live.subscribe(["run", "command", "schedule"]);
  refresh();
});
