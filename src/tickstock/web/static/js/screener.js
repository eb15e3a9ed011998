// Screener: indicator conditions + recent patterns over a universe; sortable; saved per user.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const { api, toast, esc, fmtNum } = window.TS;
  const $ = (id) => document.getElementById(id);
  let sort = { key: "symbol", desc: false }; let last = null;

  function addCondition(c) {
    c = c || { indicator: "", op: "<", value: 30 };
    const row = document.createElement("div"); row.className = "cond";
    row.innerHTML = `<input list="indicator-names" class="c-ind" placeholder="rsi_14" value="${esc(c.indicator)}" style="width:150px">
      <select class="c-op">${["<", "<=", ">", ">="].map((o) => `<option ${o === c.op ? "selected" : ""}>${o}</option>`).join("")}</select>
      <input class="c-val" type="number" step="any" value="${esc(c.value)}" style="width:90px"><button type="button" class="small">×</button>`;
    row.querySelector("button").onclick = () => row.remove();
    $("conditions").appendChild(row);
  }
  $("add-cond").onclick = () => addCondition();

  function definition() {
    const conditions = [...document.querySelectorAll("#conditions .cond")].map((r) => ({ indicator: r.querySelector(".c-ind").value.trim(), op: r.querySelector(".c-op").value, value: parseFloat(r.querySelector(".c-val").value) })).filter((c) => c.indicator && !Number.isNaN(c.value));
    const d = { timeframe: $("s-timeframe").value, conditions, patterns: [...$("s-patterns").selectedOptions].map((o) => o.value),
      pattern_days: parseInt($("s-days").value || "5", 10), sort: sort.key, descending: sort.desc };
    if ($("s-universe").value) d.universe = $("s-universe").value;
    if ($("s-direction").value) d.pattern_direction = $("s-direction").value;
    return d;
  }
  function load(d) {
    $("s-universe").value = d.universe || ""; $("s-timeframe").value = d.timeframe || "day";
    $("conditions").innerHTML = ""; (d.conditions || []).forEach(addCondition);
    const pats = new Set(d.patterns || []); [...$("s-patterns").options].forEach((o) => { o.selected = pats.has(o.value); });
    $("s-direction").value = d.pattern_direction || ""; $("s-days").value = d.pattern_days || 5;
    sort = { key: d.sort || "symbol", desc: !!d.descending };
  }

  function render(res) {
    last = res;
    const cols = ["symbol", "close", "change_pct", ...res.indicators, "patterns"];
    $("results").querySelector("thead").innerHTML = `<tr>${cols.map((c) => `<th class="sortable ${c === "symbol" || c === "patterns" ? "" : "num"}" data-col="${esc(c)}">${esc(c.replace("change_pct", "change %"))}${sort.key === c ? (sort.desc ? " ▼" : " ▲") : ""}</th>`).join("")}</tr>`;
    $("results").querySelectorAll("th").forEach((th) => { th.onclick = () => { sort = { key: th.dataset.col, desc: sort.key === th.dataset.col ? !sort.desc : true }; run(); }; });
    $("results").querySelector("tbody").innerHTML = res.rows.map((r) => `<tr>${cols.map((c) => {
      if (c === "symbol") return `<td><a href="/symbols/${encodeURIComponent(r.symbol)}">${esc(r.symbol)}</a></td>`;
      if (c === "patterns") return `<td class="small">${esc((r.patterns || []).join(", "))}</td>`;
      if (c === "change_pct") return `<td class="num ${r[c] >= 0 ? "up" : "down"}">${fmtNum(r[c])}%</td>`;
      return `<td class="num">${fmtNum(r[c], c === "close" ? 2 : 3)}</td>`; }).join("")}</tr>`).join("") || `<tr><td colspan="${cols.length}" class="empty">No symbol passes.</td></tr>`;
    $("matched").textContent = `${res.matched} match${res.matched === 1 ? "" : "es"}${res.as_of ? ` · data to ${res.as_of.slice(0, 10)}` : ""}`;
    document.body.dataset.screenRows = String(res.rows.length);
  }
  async function run() {
    try { render(await api("POST", "/api/screener", definition())); }
    catch (e) { toast(`Screen failed: ${e.message}`, "error"); }
  }
  $("screen-form").onsubmit = (ev) => { ev.preventDefault(); run(); };

  async function refreshSaved() {
    const res = await api("GET", "/api/screens");
    $("saved").innerHTML = res.screens.map((s) => `<li><a href="#" data-load="${esc(s.name)}">${esc(s.name)}</a> <button class="small danger" data-del="${esc(s.name)}">Delete</button></li>`).join("") || '<li class="muted small">None saved.</li>';
    $("saved").querySelectorAll("[data-load]").forEach((a) => { a.onclick = (ev) => { ev.preventDefault(); load(res.screens.find((s) => s.name === a.dataset.load).definition); run(); }; });
    $("saved").querySelectorAll("[data-del]").forEach((b) => { b.onclick = async () => { await api("DELETE", `/api/screens/${encodeURIComponent(b.dataset.del)}`); refreshSaved(); }; });
  }
  $("btn-save").onclick = async () => {
    const name = $("save-name").value.trim(); if (!name) { toast("Give the screen a name.", "error"); return; }
    try { await api("PUT", `/api/screens/${encodeURIComponent(name)}`, definition()); toast(`Saved “${name}”.`, "ok"); refreshSaved(); }
    catch (e) { toast(`Not saved: ${e.message}`, "error"); }
  };
  addCondition({ indicator: $("indicator-names").options[0]?.value || "rsi_14", op: "<", value: 70 });
  refreshSaved();
});
