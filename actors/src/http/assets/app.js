// rtm dashboard: sends the change forms with the token in a header (never as a cookie-only
// request), asks before a flush, and follows the live change stream. Served from rtmd; no
// inline script, no other origin.
"use strict";

const token = document.querySelector('meta[name="rtm-token"]')?.content ?? "";
// A table view that follows the stream row by row (set below); otherwise a change reloads.
const rowsTable = document.querySelector('table[data-live="rows"]');
const followsRows = Boolean(rowsTable && window.EventSource);
const reloadUnlessLive = () => followsRows || location.reload();

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

// The route form's next hops (ip route's `nexthop via A dev X weight W`), one row of inputs
// each, sent as `nexthops`; the other fields as they are.
function formBody(form, table) {
  const body = { table };
  for (const [k, v] of new FormData(form).entries()) {
    if (!k.startsWith("hop-")) body[k] = String(v);
  }
  const hops = [...form.querySelectorAll(".hop-row")].map((row) => ({
    via: row.querySelector('[name="hop-via"]').value,
    dev: row.querySelector('[name="hop-dev"]').value,
    weight: row.querySelector('[name="hop-weight"]').value,
  }));
  if (hops.length) body.nexthops = hops;
  return body;
}

function addHop(list) {
  const row = document.createElement("div");
  row.className = "hop-row";
  for (const [name, hint] of [["via", "nexthop via 192.0.2.1"], ["dev", "dev eth0"], ["weight", "weight 1"]]) {
    const input = document.createElement("input");
    input.name = `hop-${name}`;
    input.placeholder = hint;
    input.setAttribute("aria-label", `nexthop ${name}`);
    row.append(input, " ");
  }
  const remove = document.createElement("button");
  remove.type = "button";
  remove.textContent = "remove";
  remove.addEventListener("click", () => row.remove());
  row.append(remove);
  list.append(row);
}

const hopList = document.getElementById("hops");
document.getElementById("add-hop")?.addEventListener("click", () => hopList && addHop(hopList));

for (const [id, table] of [["route-form", "route"], ["arp-form", "arp"]]) {
  const form = document.getElementById(id);
  if (!form) continue;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const answer = await post("/api/change", formBody(form, table));
    say(form, answer);
    if (answer.ok) setTimeout(reloadUnlessLive, 300);
  });
}

document.addEventListener("click", async (e) => {
  const b = e.target.closest("button");
  if (!b) return;
  if (b.dataset.delRoute) {
    say(b.closest("table"), await post("/api/change", { table: "route", op: "del", prefix: b.dataset.delRoute }));
    reloadUnlessLive();
  } else if (b.dataset.delArp) {
    say(b.closest("table"), await post("/api/change", { table: "arp", op: "del", mac: b.dataset.delArp }));
    reloadUnlessLive();
  } else if (b.dataset.flush) {
    const what = { route: "routes", arp: "ARP entries", all: "routes and ARP entries" }[b.dataset.flush];
    if (!confirm(`Flush: delete all ${b.dataset.count} ${what}?`)) return;
    const answer = await post("/api/flush", { tables: b.dataset.flush });
    say(b, answer);
    if (answer.ok) setTimeout(() => location.reload(), 300);
  }
});

// A table view's rows updated in place: the keys the stream names are asked for (/api/rows,
// under the page's search) and each row is replaced, removed, or placed in key order when it
// falls on this page. A flush, a resync or more keys than one request takes reload instead.
// `catchUp` reads the page once more after the stream has opened: a change made between the
// page being read and the stream starting reached neither, and would stay missing until a
// reload.
function rowUpdater(table) {
  const name = table.id === "routes" ? "route" : "arp";
  const q = new URLSearchParams(location.search).get("q") ?? "";
  const page = Number(table.dataset.page), perPage = Number(table.dataset.pageRows);
  const maxKeys = Number(table.dataset.maxKeys);
  const pager = document.querySelector(".pager")?.firstChild;
  // key -> whether the stream created it since the last request
  let keys = new Map(), soon = null, reloading = false;
  let previous = Promise.resolve(); // one request at a time, answers applied in order
  const reload = () => {
    if (!reloading) setTimeout(() => location.reload(), 300);
    reloading = true;
  };
  // The pager's "A to B of T": B from the rows shown, T moved by `dTotal`.
  const recount = (body, dTotal) => {
    const m = pager?.nodeType === Node.TEXT_NODE && /^(\d+) to (\d+) of (\d+)/.exec(pager.data);
    if (!m) return;
    const shown = body.rows.length;
    const total = Math.max(page * perPage + shown, Number(m[3]) + dTotal);
    pager.data = pager.data.replace(m[0],
      `${shown ? page * perPage + 1 : 0} to ${page * perPage + shown} of ${total}`);
  };
  const place = (body, row) => {
    const rows = [...body.rows];
    const old = rows.find((r) => r.dataset.key === row.dataset.key);
    if (old) return old.replaceWith(row);
    const after = rows.find((r) => r.dataset.order > row.dataset.order);
    // Before the first row of a later page, or past the last of a full page: another page's.
    if (after ? after === rows[0] && page > 0 : rows.length >= perPage) return;
    after ? after.before(row) : body.append(row);
    if (body.rows.length > perPage) body.rows[body.rows.length - 1].remove();
  };
  const fetchRows = async () => {
    soon = null;
    const created = keys;
    const asked = [...keys.keys()];
    keys = new Map();
    const url = `/api/rows?table=${name}&q=${encodeURIComponent(q)}&keys=` +
      asked.map(encodeURIComponent).join(",");
    try {
      const r = await fetch(url, { credentials: "same-origin" });
      if (!r.ok) return reload();
      const { rows } = await r.json();
      const body = table.tBodies[0];
      let dTotal = 0;
      for (const [key, html] of Object.entries(rows)) {
        const old = [...body.rows].find((r) => r.dataset.key === key);
        if (html === null) {
          if (old && !created.get(key)) dTotal -= 1;
          old?.remove();
          continue;
        }
        if (created.get(key) && !old) dTotal += 1;
        const t = document.createElement("template");
        t.innerHTML = html;
        place(body, t.content.firstElementChild);
      }
      recount(body, dTotal);
    } catch (_) {
      reload();
    }
  };
  const fetchPage = async () => {
    try {
      const r = await fetch(location.href, { credentials: "same-origin" });
      if (!r.ok) return reload();
      const doc = new DOMParser().parseFromString(await r.text(), "text/html");
      const fresh = doc.getElementById(table.id)?.tBodies[0];
      if (!fresh) return reload();
      table.tBodies[0].replaceWith(document.adoptNode(fresh));
      const text = doc.querySelector(".pager")?.firstChild;
      if (pager?.nodeType === Node.TEXT_NODE && text?.nodeType === Node.TEXT_NODE) {
        pager.data = text.data;
      }
    } catch (_) {
      reload();
    }
  };
  const onEvents = (list) => {
    for (const ev of list) {
      if (ev.table !== name || ev.kind === "start") continue;
      if (ev.kind !== "change" || !ev.key) return reload();
      keys.set(ev.key, Boolean(keys.get(ev.key)) || ev.op === "create");
    }
    if (keys.size > maxKeys) return reload();
    if (keys.size && !soon && !reloading) {
      soon = setTimeout(() => (previous = previous.then(fetchRows)), 100);
    }
  };
  // In the same queue as the rows' requests, so that answers apply in the order asked.
  const catchUp = () => (previous = previous.then(fetchPage));
  return { onEvents, catchUp };
}

// The live stream: on the Events page a list; on the table pages rows updated in place (an
// address search's single answer reloads).
const events = document.querySelector("#events tbody");
const live = events || document.getElementById("routes") || document.getElementById("arps")
  || document.getElementById("neighs");
if (live && window.EventSource) {
  const state = document.getElementById("stream-state");
  const filter = document.getElementById("filter");
  const pause = document.getElementById("pause");
  let paused = false;
  let reloadSoon = null;
  const updateRows = followsRows ? rowUpdater(rowsTable) : null;
  pause?.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
  });
  const es = new EventSource("/events/stream");
  es.addEventListener("open", () => {
    state && (state.textContent = "live");
    updateRows?.catchUp();
  });
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
    if (updateRows) return updateRows.onEvents(list);
    if (!events) {
      const table = { routes: "route", arps: "arp", neighs: "neigh" }[live.id];
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

// The clients page: its rows again every 2 s (queues and counts move).
const clientRows = document.querySelector("#clients tbody");
if (clientRows) {
  setInterval(async () => {
    try {
      const r = await fetch("/api/clients", { credentials: "same-origin" });
      if (r.ok) clientRows.innerHTML = (await r.json()).rows;
    } catch (_) { /* rtmd restarting: try again at the next tick */ }
  }, 2000);
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
