// Market dashboard: breadth, movers and a live, filtered feed of pattern detections.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const { api, toast, esc, fmtTime, fmtNum } = window.TS;
  const $ = (id) => document.getElementById(id);
  const MAX_FEED = 200;
  const filters = () => ({ universe: $("universe").value || null, pattern: $("f-pattern").value || null,
    direction: $("f-direction").value || null, timeframe: $("f-timeframe").value || null,
    min_confidence: parseFloat($("f-conf").value || "0") || 0 });

  const item = (d, fresh) => `<div class="feed-item${fresh ? " new" : ""}" data-symbol="${esc(d.symbol)}" data-gen="${generation}">
    <a href="/symbols/${encodeURIComponent(d.symbol)}"><strong>${esc(d.symbol)}</strong></a>
    <span class="pill ${esc(d.direction)}">${esc(d.direction)}</span>
    <span>${esc(d.pattern)} <span class="muted small">· ${esc(d.timeframe)} · ${fmtTime(d.ts)}</span></span>
    <span class="num">${fmtNum((d.confidence || 0) * 100, 0)}%</span></div>`;

  // Each filter change starts a generation: live items that arrive while its stored detections
  // load are kept on top of them; items of an older generation (older filters) are replaced.
  let generation = 0;
  async function loadFeed() {
    const gen = ++generation;
    const f = filters(); const q = new URLSearchParams({ limit: "60", min_confidence: String(f.min_confidence) });
    ["universe", "pattern", "direction", "timeframe"].forEach((k) => { if (f[k]) q.set(k, f[k]); });
    try {
      const res = await api("GET", `/api/patterns?${q}`);
      if (gen !== generation) return; // a newer filter change owns the feed now
      const arrived = [...$("feed").querySelectorAll(`.feed-item.new[data-gen="${gen}"]`)];
      $("feed").innerHTML = res.detections.length ? res.detections.map((d) => item(d, false)).join("") : '<p class="empty" id="feed-empty">No detections match.</p>';
      if (arrived.length) { $("feed-empty")?.remove(); $("feed").prepend(...arrived); }
    } catch (e) { toast(`Detections: ${e.message}`, "error"); }
  }

  const moverRow = (m) => `<tr><td><a href="/symbols/${encodeURIComponent(m.symbol)}">${esc(m.symbol)}</a></td>
    <td class="num">${fmtNum(m.close)}</td><td class="num ${m.change_pct >= 0 ? "up" : "down"}">${m.change_pct >= 0 ? "+" : ""}${fmtNum(m.change_pct)}%</td></tr>`;
  async function loadMovers() {
    const u = $("universe").value;
    try {
      const res = await api("GET", `/api/market/movers${u ? `?universe=${encodeURIComponent(u)}` : ""}`);
      const b = res.breadth;
      $("b-adv").textContent = b.advancers; $("b-dec").textContent = b.decliners; $("b-unch").textContent = b.unchanged;
      $("b-hi").textContent = b.new_highs; $("b-lo").textContent = b.new_lows; $("b-asof").textContent = res.as_of ? res.as_of.slice(0, 10) : "no data";
      $("gainers").querySelector("tbody").innerHTML = res.gainers.map(moverRow).join("") || '<tr><td class="empty">No data.</td></tr>';
      $("losers").querySelector("tbody").innerHTML = res.losers.map(moverRow).join("") || '<tr><td class="empty">No data.</td></tr>';
    } catch (e) { toast(`Movers: ${e.message}`, "error"); }
  }

  function subscribe() {
    const f = filters(); const live = { min_confidence: f.min_confidence };
    if (f.universe) live.universe = f.universe; if (f.pattern) live.patterns = [f.pattern];
    if (f.direction) live.direction = f.direction; if (f.timeframe) live.timeframes = [f.timeframe];
    window.TS.live.subscribe(["pattern"], live);
  }
  window.TS.live.on("pattern.detected", (m) => {
    const feed = $("feed"); $("feed-empty")?.remove();
    feed.insertAdjacentHTML("afterbegin", item(m.data, true));
    while (feed.children.length > MAX_FEED) feed.lastElementChild.remove();
  });
  window.TS.live.on("resync", loadFeed);
  const changed = () => { loadFeed(); subscribe(); };
  ["f-pattern", "f-direction", "f-timeframe", "f-conf"].forEach((id) => $(id).addEventListener("change", changed));
  $("universe").addEventListener("change", () => { changed(); loadMovers(); });
  loadFeed(); loadMovers(); subscribe();
});
