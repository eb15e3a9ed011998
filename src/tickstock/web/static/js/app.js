// TickStock page runtime: CSRF-aware fetch, toasts, and the live-push socket client.
"use strict";
(function () {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

  async function api(method, url, body) {
    const opts = { method, headers: { "Accept": "application/json" }, credentials: "same-origin" };
    if (method !== "GET") opts.headers["X-CSRF-Token"] = csrf();
    if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    const res = await fetch(url, opts);
    const text = await res.text();
    const data = text ? JSON.parse(text) : null;
    if (!res.ok) {
      const err = new Error((data && data.message) || res.statusText);
      err.status = res.status; err.data = data; throw err;
    }
    return data;
  }

  function toast(message, kind) {
    const box = document.getElementById("toasts");
    if (!box) return;
    const el = document.createElement("div");
    el.className = "toast " + (kind || "");
    el.textContent = message;
    box.appendChild(el);
    setTimeout(() => el.remove(), kind === "error" ? 9000 : 4500);
  }

  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const fmtTime = (iso) => iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "—";
  const fmtNum = (v, d = 2) => (v === null || v === undefined || Number.isNaN(v)) ? "—" : Number(v).toLocaleString(undefined, { minimumFractionDigits: d, maximumFractionDigits: d });
  const fmtDur = (s) => { if (s === null || s === undefined) return "—"; s = Math.round(s); const m = Math.floor(s / 60); return m ? `${m}m ${s % 60}s` : `${s}s`; };

  // Live socket: one per page. Reconnects with back-off and asks for what it missed.
  class Live {
    constructor() { this.handlers = {}; this.sub = null; this.lastId = sessionStorage.getItem("ts-last-id"); this.delay = 500; this.ws = null; }
    on(kind, fn) { (this.handlers[kind] = this.handlers[kind] || []).push(fn); return this; }
    emit(kind, msg) { (this.handlers[kind] || []).forEach((fn) => { try { fn(msg); } catch (e) { console.error(e); } }); }
    subscribe(topics, filters) { this.sub = { op: "subscribe", topics, filters: filters || {} }; this.send(); return this; }
    send() {
      if (!this.ws || this.ws.readyState !== 1 || !this.sub) return;
      const msg = Object.assign({}, this.sub);
      if (this.lastId) msg.last_id = this.lastId;
      this.ws.send(JSON.stringify(msg));
    }
    state(s) { const d = document.getElementById("live-state"); if (d) { d.className = "live-dot " + s; d.title = "live updates: " + s; } document.body.dataset.live = s; }
    connect() {
      const proto = location.protocol === "https:" ? "wss" : "ws";
      const ws = new WebSocket(`${proto}://${location.host}/ws`);
      this.ws = ws;
      ws.onopen = () => { this.delay = 500; this.state("live"); };
      ws.onmessage = (ev) => {
        const msg = JSON.parse(ev.data);
        if (msg.kind === "hello") { if (!this.lastId) this.lastId = msg.last_id; this.send(); this.emit("hello", msg); return; }
        if (msg.kind === "event") { this.lastId = msg.id; sessionStorage.setItem("ts-last-id", msg.id); this.emit(msg.type, msg); this.emit("*", msg); return; }
        if (msg.kind === "resync") { if (msg.last_id) { this.lastId = msg.last_id; sessionStorage.setItem("ts-last-id", msg.last_id); } this.state("live"); this.emit("resync", msg); return; }
        if (msg.kind === "subscribed") document.body.dataset.subscribed = String(Number(document.body.dataset.subscribed || 0) + 1);
        this.emit(msg.kind, msg);
      };
      ws.onclose = () => {
        this.state("reconnecting");
        setTimeout(() => this.connect(), this.delay);
        this.delay = Math.min(this.delay * 2, 10000);
      };
    }
  }

  window.TS = { api, toast, esc, fmtTime, fmtNum, fmtDur, live: new Live() };
  document.addEventListener("DOMContentLoaded", () => { if (document.getElementById("live-state")) window.TS.live.connect(); });
})();
