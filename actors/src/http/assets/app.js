// rtm dashboard: sends the change forms with the token in a header (never as a cookie-only
// request), asks before a flush, and follows the live change stream. Served from rtmd; no
// inline script, no other origin.
"use strict";

const token = document.querySelector('meta[name="rtm-token"]')?.content ?? "";

async function post(path, body) {
  const r = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-Rtm-Token": token },
    body: JSON.stringify(body),
  });
  let answer;
  try {
    answer = await r.json();
  } catch (_) {
    answer = { ok: false, error: (await r.text()).trim() || r.statusText };
  }
  return answer;
}

function say(near, answer) {
  const out = near.parentElement.querySelector(".result") ?? document.querySelector(".result");
  if (!out) return;
  out.textContent = answer.ok ? `done (seq ${answer.seq})` : answer.error;
  out.className = answer.ok ? "result ok" : "result error";
}

function formBody(form, table) {
  const body = { table };
  for (const [k, v] of new FormData(form).entries()) body[k] = String(v);
  return body;
}

for (const [id, table] of [["route-form", "route"], ["arp-form", "arp"]]) {
  const form = document.getElementById(id);
  if (!form) continue;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const answer = await post("/api/change", formBody(form, table));
    say(form, answer);
    if (answer.ok) setTimeout(() => location.reload(), 300);
  });
}

document.addEventListener("click", async (e) => {
  const b = e.target.closest("button");
  if (!b) return;
  if (b.dataset.delRoute) {
    say(b.closest("table"), await post("/api/change", { table: "route", op: "del", prefix: b.dataset.delRoute }));
    location.reload();
  } else if (b.dataset.delArp) {
    say(b.closest("table"), await post("/api/change", { table: "arp", op: "del", mac: b.dataset.delArp }));
    location.reload();
  } else if (b.dataset.flush) {
    const what = { route: "routes", arp: "ARP entries", all: "routes and ARP entries" }[b.dataset.flush];
    if (!confirm(`Flush: delete all ${b.dataset.count} ${what}?`)) return;
    const answer = await post("/api/flush", { tables: b.dataset.flush });
    say(b, answer);
    if (answer.ok) setTimeout(() => location.reload(), 300);
  }
});

// The live stream: on the Events page a list; on the table pages a reload after changes.
const events = document.querySelector("#events tbody");
const live = events || document.getElementById("routes") || document.getElementById("arps");
if (live && window.EventSource) {
  const state = document.getElementById("stream-state");
  const filter = document.getElementById("filter");
  const pause = document.getElementById("pause");
  let paused = false;
  let reloadSoon = null;
  pause?.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
  });
  const es = new EventSource("/events/stream");
  es.addEventListener("open", () => state && (state.textContent = "live"));
  es.addEventListener("error", () => state && (state.textContent = "reconnecting"));
  es.addEventListener("resync", () => {
    if (events) {
      events.replaceChildren();
      state && (state.textContent = "resynced: some events were skipped");
    } else {
      location.reload();
    }
  });
  es.addEventListener("changes", (m) => {
    const list = JSON.parse(m.data);
    if (!events) {
      const table = live.id === "routes" ? "route" : "arp";
      if (list.some((ev) => ev.table === table && ev.kind !== "start") && !reloadSoon) {
        reloadSoon = setTimeout(() => location.reload(), 500);
      }
      return;
    }
    if (paused) return;
    const f = filter?.value ?? "";
    for (const ev of list) {
      const row = document.createElement("tr");
      for (const v of [ev.seq ?? "", ev.table ?? "", ev.op ?? ev.kind, ev.key ?? ""]) {
        const td = document.createElement("td");
        td.textContent = String(v);
        row.append(td);
      }
      if (f && !row.textContent.includes(f)) continue;
      events.prepend(row);
    }
    while (events.rows.length > 500) events.deleteRow(-1);
  });
}

// The overview's chart: changes and notifications per second, polled from /api/status.
const chart = document.getElementById("rates");
if (chart) {
  const points = []; // [changes/s, notifications/s], oldest first
  const keep = 150;  // 5 minutes at one point every 2 s
  let last = null;
  const draw = () => {
    const g = chart.getContext("2d");
    const w = chart.width, h = chart.height;
    g.clearRect(0, 0, w, h);
    const top = Math.max(1, ...points.flat());
    g.strokeStyle = "#c9ced6";
    g.strokeRect(0.5, 0.5, w - 1, h - 1);
    g.fillStyle = "#555";
    g.fillText(`${Math.round(top)}/s`, 4, 12);
    for (const [i, color] of [[0, "#1f6feb"], [1, "#d97706"]]) {
      g.strokeStyle = color;
      g.beginPath();
      points.forEach((p, x) => {
        const px = w - (points.length - 1 - x) * (w / (keep - 1));
        const py = h - 2 - (p[i] / top) * (h - 16);
        x === 0 ? g.moveTo(px, py) : g.lineTo(px, py);
      });
      g.stroke();
    }
  };
  const poll = async () => {
    try {
      const r = await fetch("/api/status", { credentials: "same-origin" });
      if (r.ok) {
        const s = await r.json();
        const now = performance.now();
        const c = s.counters.changes ?? 0, e = s.counters.events_sent ?? 0;
        if (last) {
          const dt = (now - last.t) / 1000;
          points.push([(c - last.c) / dt, (e - last.e) / dt]);
          if (points.length > keep) points.shift();
          const [pc, pe] = points[points.length - 1];
          document.getElementById("rates-now").textContent =
            `now: ${pc.toFixed(1)} changes/s, ${pe.toFixed(1)} notifications/s`;
          draw();
        }
        last = { t: now, c, e };
      }
    } catch (_) { /* rtmd restarting: try again at the next tick */ }
  };
  poll();
  setInterval(poll, 2000);
}
