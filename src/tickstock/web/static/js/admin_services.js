// Admin · services: instances from heartbeats (pushed on change), infrastructure, errors.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const { api, esc, fmtTime } = window.TS;
  const $ = (id) => document.getElementById(id);

  const kv = (o) => `<dl class="kv">${Object.entries(o).map(([k, v]) => `<dt>${esc(k.replace(/_/g, " "))}</dt><dd>${k === "status" ? `<span class="pill ${v === "up" ? "ok" : "failed"}">${esc(v)}</span>` : esc(v ?? "—")}</dd>`).join("")}</dl>`;

  function instances(list) {
    const body = $("instances").querySelector("tbody");
    body.innerHTML = list.length ? list.map((i) => `<tr data-instance="${esc(i.instance)}"><td>${esc(i.role)}</td><td>${esc(i.instance)}</td>
      <td><span class="pill ${i.status === "up" ? "ok" : i.status === "stale" ? "stale" : "failed"}">${esc(i.status)}</span></td><td>${esc(i.state)}</td>
      <td>${esc(i.host)}</td><td class="num">${esc(i.pid)}</td><td>${esc(i.version)}</td><td>${fmtTime(i.started_at)}</td><td class="num">${esc(i.age_s)}s</td></tr>`).join("")
      : '<tr><td colspan="9" class="empty">No role instance has sent a heartbeat.</td></tr>';
  }

  function render(s) {
    $("pg").innerHTML = kv(s.postgres); $("redis").innerHTML = kv(s.redis);
    instances(s.instances);
    $("errors").querySelector("tbody").innerHTML = s.errors.length ? s.errors.map((e) => `<tr><td>${fmtTime(e.ts)}</td><td>${esc(e.type)}</td><td>${esc(e.source)}</td>
      <td class="small">${esc(e.data.error || e.data.reason || "")}</td></tr>`).join("") : '<tr><td colspan="4" class="empty">No recent errors.</td></tr>';
    $("dead").querySelector("tbody").innerHTML = s.dead_letters.length ? s.dead_letters.map((d) => `<tr><td>${fmtTime(d.ts)}</td><td>${esc(d.stream)}</td><td>${esc(d.message_type)}</td>
      <td class="small">${esc(d.reason)}</td></tr>`).join("") : '<tr><td colspan="4" class="empty">No dead letters.</td></tr>';
    $("live-clients").textContent = s.web.live_clients;
    $("as-of").textContent = `as of ${fmtTime(s.as_of)}`;
  }
  render(JSON.parse($("snapshot").textContent));
  const reload = async () => { try { render(await api("GET", "/api/admin/services")); } catch (e) { window.TS.toast(e.message, "error"); } };
  const live = window.TS.live;
  live.on("services", (m) => instances(m.instances));
  ["service.error", "job.failed", "run.failed"].forEach((t) => live.on(t, reload));
  live.on("resync", reload);
  live.subscribe(["service", "job", "run"]);
});
