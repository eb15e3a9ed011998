// Symbol page: candles + volume, MA/Bollinger overlays, RSI/MACD panes, pattern markers,
// outcome statistics; live bars and detections for this symbol and timeframe.
"use strict";
document.addEventListener("DOMContentLoaded", async () => {
  const { api, toast, esc, fmtTime, fmtNum } = window.TS;
  const $ = (id) => document.getElementById(id);
  const box = $("chart"); const symbol = box.dataset.symbol; const tf = box.dataset.timeframe;
  const LC = window.LightweightCharts;
  if (!LC) { $("chart-note").textContent = "Charting library missing: run `make setup` (npm ci in src/tickstock/web/vendor)."; return; }
  const latest = JSON.parse($("latest-json").textContent).map((v) => v.name);
  const t = (iso) => Math.floor(new Date(iso).getTime() / 1000);
  const COLORS = ["#f59e0b", "#8b5cf6", "#0ea5e9", "#ec4899", "#14b8a6"];

  const chart = LC.createChart(box, { autoSize: true, layout: { background: { color: "#ffffff" }, textColor: "#344054", panes: { separatorColor: "#e3e8ef" } },
    grid: { vertLines: { color: "#f2f4f7" }, horzLines: { color: "#f2f4f7" } }, timeScale: { timeVisible: tf !== "day" && tf !== "week" && tf !== "month" },
    rightPriceScale: { borderColor: "#e3e8ef" } });
  const candles = chart.addSeries(LC.CandlestickSeries, { upColor: "#12805c", downColor: "#c4314b", borderVisible: false, wickUpColor: "#12805c", wickDownColor: "#c4314b" });
  const volume = chart.addSeries(LC.HistogramSeries, { priceFormat: { type: "volume" }, priceScaleId: "", color: "#cbd5e1" });
  volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  candles.priceScale().applyOptions({ scaleMargins: { top: 0.05, bottom: 0.25 } });

  let bars = [];
  try { bars = (await api("GET", `/api/bars/${encodeURIComponent(symbol)}?timeframe=${tf}&limit=1000`)).bars; }
  catch (e) { toast(`Bars: ${e.message}`, "error"); }
  const toCandle = (b) => ({ time: t(b.ts), open: b.open, high: b.high, low: b.low, close: b.close });
  const toVol = (b) => ({ time: t(b.ts), value: b.volume, color: b.close >= b.open ? "rgba(18,128,92,.35)" : "rgba(196,49,75,.35)" });
  candles.setData(bars.map(toCandle)); volume.setData(bars.map(toVol));
  document.body.dataset.candles = String(bars.length);
  if (!bars.length) $("chart-note").textContent = "No bars stored for this timeframe yet.";
  else { const last = bars[bars.length - 1]; $("last-price").textContent = `${fmtNum(last.close)} · ${last.ts.slice(0, 10)}`; }

  // Indicators: pick what exists. Names are canonical outputs (e.g. sma_20, bbands_20_2.upper).
  const mas = latest.filter((n) => /^(sma|ema|wma|dema|tema|kama)_\d+$/.test(n));
  const bb = latest.filter((n) => /^(bbands|bb)[^.]*\.(upper|middle|lower)$/.test(n));
  const rsi = latest.find((n) => /^rsi_\d+$/.test(n));
  const macd = latest.filter((n) => /^macd[^.]*(\.(macd|signal|hist))?$/.test(n));
  const overlays = {}; let shown = 0;
  const start = bars.length ? bars[0].ts : null;
  async function series(names) {
    if (!names.length || !start) return {};
    return (await api("GET", `/api/indicators/${encodeURIComponent(symbol)}?timeframe=${tf}&names=${names.join(",")}&start=${encodeURIComponent(start)}`)).series;
  }
  const line = (pts) => pts.map(([ts, v]) => ({ time: t(ts), value: v }));
  function control(label, on, toggle) {
    const id = `ov-${label.replace(/[^a-z0-9]/gi, "_")}`;
    $("overlay-controls").insertAdjacentHTML("beforeend", `<label style="flex-direction:row;align-items:center;gap:4px;color:var(--ink)"><input type="checkbox" id="${id}" ${on ? "checked" : ""}> ${esc(label)}</label>`);
    $(id).onchange = (ev) => toggle(ev.target.checked);
  }
  try {
    const data = await series([...mas, ...bb, ...(rsi ? [rsi] : []), ...macd]);
    mas.forEach((name, i) => {
      const s = chart.addSeries(LC.LineSeries, { color: COLORS[i % COLORS.length], lineWidth: 2, priceLineVisible: false, lastValueVisible: false, title: name });
      s.setData(line(data[name] || [])); overlays[name] = s;
      const on = i < 2; s.applyOptions({ visible: on }); if (on && (data[name] || []).length) shown += 1;
      control(name.toUpperCase(), on, (v) => s.applyOptions({ visible: v }));
    });
    if (bb.length) {
      const bbs = bb.map((name) => { const s = chart.addSeries(LC.LineSeries, { color: "#64748b", lineWidth: 1, lineStyle: name.endsWith("middle") ? 2 : 0, priceLineVisible: false, lastValueVisible: false }); s.setData(line(data[name] || [])); return s; });
      if (bb.some((n) => (data[n] || []).length)) shown += 1;
      control("Bollinger", true, (v) => bbs.forEach((s) => s.applyOptions({ visible: v })));
    }
    let pane = 1;
    if (rsi) {
      const s = chart.addSeries(LC.LineSeries, { color: "#7c3aed", lineWidth: 1, title: rsi }, pane++);
      s.setData(line(data[rsi] || []));
      s.createPriceLine({ price: 70, color: "#c4314b", lineStyle: 2, lineWidth: 1 }); s.createPriceLine({ price: 30, color: "#12805c", lineStyle: 2, lineWidth: 1 });
    }
    if (macd.length) {
      const p = pane++;
      macd.forEach((name) => {
        const isHist = name.endsWith(".hist");
        const s = chart.addSeries(isHist ? LC.HistogramSeries : LC.LineSeries, isHist ? { color: "#94a3b8", title: name } : { color: name.endsWith(".signal") ? "#f59e0b" : "#2458d6", lineWidth: 1, title: name }, p);
        s.setData(line(data[name] || []));
      });
    }
    // Relative heights: price and volume get most of the chart, each indicator pane a fifth.
    chart.panes().forEach((pn, i) => pn.setStretchFactor(i === 0 ? 5 : 1.2));
    document.body.dataset.panes = String(chart.panes().length);
  } catch (e) { toast(`Indicators: ${e.message}`, "error"); }
  document.body.dataset.overlays = String(shown);

  // Pattern markers and outcome statistics.
  let markers = [];
  const markerApi = LC.createSeriesMarkers(candles, []);
  const toMarker = (d) => ({ time: t(d.ts), position: d.direction === "bearish" ? "aboveBar" : "belowBar",
    color: d.direction === "bullish" ? "#12805c" : d.direction === "bearish" ? "#c4314b" : "#64748b",
    shape: d.direction === "bullish" ? "arrowUp" : d.direction === "bearish" ? "arrowDown" : "circle", text: d.pattern });
  function setMarkers() {
    const first = bars.length ? t(bars[0].ts) : 0;
    let visible = markers.filter((m) => m.time >= first).sort((a, b) => a.time - b.time);
    // Labels on every marker of a dense chart overlap into noise: arrows only, names on hover list.
    if (visible.length > 20) visible = visible.map((m) => Object.assign({}, m, { text: "" }));
    markerApi.setMarkers(visible); document.body.dataset.markers = String(visible.length);
  }
  try {
    const det = (await api("GET", `/api/patterns?symbol=${encodeURIComponent(symbol)}&timeframe=${tf}&limit=500`)).detections;
    markers = det.map(toMarker); setMarkers();
    $("recent-patterns").innerHTML = det.slice(0, 12).map((d) => `<li><span class="pill ${esc(d.direction)}">${esc(d.direction)}</span> ${esc(d.pattern)} <span class="muted">${fmtTime(d.ts).slice(0, 16)} · ${fmtNum(d.confidence * 100, 0)}%</span></li>`).join("") || '<li class="muted">None detected.</li>';
    const names = [...new Set(det.map((d) => d.pattern))].slice(0, 40);
    const out = names.length ? (await api("GET", `/api/patterns/outcomes?timeframe=${tf}&pattern=${names.join(",")}`)).outcomes : [];
    const pct = (v) => v === null || v === undefined ? "—" : `${fmtNum(v * 100)}%`;
    $("outcomes").querySelector("tbody").innerHTML = out.map((o) => `<tr><td>${esc(o.pattern)}</td><td>${esc(o.universe)}</td><td class="num">${o.horizon_bars}</td><td class="num">${o.occurrences}</td>
      <td class="num">${pct(o.mean_return)}</td><td class="num">${pct(o.median_return)}</td><td class="num">${pct(o.p10_return)}</td><td class="num">${pct(o.p90_return)}</td><td class="num">${pct(o.hit_rate)}</td></tr>`).join("")
      || '<tr><td colspan="9" class="empty">No outcome statistics for these patterns yet.</td></tr>';
  } catch (e) { toast(`Patterns: ${e.message}`, "error"); }
  chart.timeScale().fitContent();

  // Live: the forming bar and new detections.
  const live = window.TS.live;
  live.on("bar.live", (m) => {
    const b = m.data; const last = bars.length ? t(bars[bars.length - 1].ts) : 0;
    if (t(b.ts) < last) return; // older than what is drawn: the chart only appends
    if (t(b.ts) > last) bars.push(b);
    candles.update(toCandle(b)); volume.update(toVol(b));
  });
  live.on("pattern.detected", (m) => { markers.push(toMarker(m.data)); setMarkers(); });
  live.subscribe(["bar", "pattern"], { symbols: [symbol], timeframes: [tf] });
});
