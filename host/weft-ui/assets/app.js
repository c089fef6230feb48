// The dashboard page: reads /api/snapshot, then follows /api/events (SSE).
// Every value from the kernel is set with textContent, never as HTML:
// chain payloads come from agents.
"use strict";

const KEY = "weft_ui_token";
const MAX_CHAIN_ROWS = 200;
let token = null;
let lastSeq = null;

// The token comes once in the URL; keep it for this tab (for the header a
// decision needs) and take it out of the address bar and history.
(function takeToken() {
  const u = new URL(window.location.href);
  const t = u.searchParams.get("token");
  if (t) {
    sessionStorage.setItem(KEY, t);
    u.searchParams.delete("token");
    history.replaceState(null, "", u.pathname + u.search);
  }
  token = sessionStorage.getItem(KEY);
})();

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (token) h["X-Weft-Token"] = token;
  return h;
}

const $ = (sel) => document.querySelector(sel);

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

// A JSON value as short text.
function txt(v) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (typeof v === "object" && !Array.isArray(v)) {
    const keys = Object.keys(v);
    if (keys.length === 1) return keys[0] + ": " + txt(v[keys[0]]);
  }
  return JSON.stringify(v);
}

function stateCell(v) {
  const s = txt(v);
  return el("td", s, "state-" + s.toLowerCase().split(/[^a-z]/)[0]);
}

function problem(msg) {
  const p = $("#problem");
  p.textContent = msg || "";
  p.hidden = !msg;
}

function fill(tbodySel, rows, makeRow, emptyText, cols) {
  const tb = $(tbodySel);
  tb.replaceChildren();
  if (rows && rows.error) {
    const tr = el("tr");
    const td = el("td", rows.error, "deny");
    td.colSpan = cols;
    tr.append(td);
    tb.append(tr);
    return;
  }
  if (!Array.isArray(rows) || rows.length === 0) {
    const tr = el("tr");
    const td = el("td", emptyText, "hint");
    td.colSpan = cols;
    tr.append(td);
    tb.append(tr);
    return;
  }
  for (const r of rows) tb.append(makeRow(r));
}

function processRow(p) {
  const tr = el("tr");
  tr.dataset.name = txt(p.name);
  const u = p.usage || {};
  const agent = p.kind === "agent";
  tr.append(
    el("td", txt(p.name)),
    el("td", txt(agent ? p.pid : p.id)),
    el("td", txt(p.owner)),
    el("td", txt(p.kind)),
    stateCell(p.state),
    el("td", txt(agent ? u.restarts : p.restarts)),
    el("td", txt(u.messages_received)),
    el("td", txt(u.messages_sent)),
    el("td", txt(u.tool_calls)),
    el("td", txt(u.fuel_consumed)),
    el("td", txt(p.last_failure)),
  );
  return tr;
}

function appRow(a) {
  const tr = el("tr");
  tr.dataset.name = txt(a.name);
  tr.append(el("td", txt(a.name)), el("td", txt(a.version)), stateCell(a.state),
    el("td", txt(a.environment)), el("td", txt(a.signer)), el("td", txt(a.error)));
  return tr;
}

async function decide(id, verdict, reasonInput, button) {
  const reason = reasonInput.value.trim();
  if (!reason) { problem("A decision needs a reason."); reasonInput.focus(); return; }
  if (!token) { problem("Open the page with the URL `weaver ui` prints to decide (the decision needs the token)."); return; }
  button.disabled = true;
  try {
    const r = await fetch("/api/escalations/" + id + "/" + verdict, {
      method: "POST",
      headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify({ reason }),
    });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) problem("Escalation #" + id + ": " + (body.error || r.status));
    else { problem(null); refresh(); }
  } finally {
    button.disabled = false;
  }
}

function escalationRow(e) {
  const tr = el("tr");
  tr.dataset.id = String(e.id);
  const decision = el("td");
  if (txt(e.state) === "pending") {
    const reason = el("input", null, "reason");
    reason.placeholder = "reason (recorded)";
    const ok = el("button", "Approve", "approve");
    const no = el("button", "Deny", "deny-button");
    ok.type = no.type = "button";
    ok.onclick = () => decide(e.id, "approve", reason, ok);
    no.onclick = () => decide(e.id, "deny", reason, no);
    decision.append(reason, " ", ok, " ", no);
  } else {
    decision.textContent = txt(e.decision_reason);
  }
  tr.append(el("td", txt(e.id)), el("td", txt(e.principal)), el("td", txt(e.action)),
    el("td", txt(e.reason)), stateCell(e.state), el("td", txt(e.decided_by)), decision);
  return tr;
}

function who(ev) {
  const p = ev.payload || {};
  const principal = p.agent || p.principal || p.by || p.name;
  const parts = [principal, p.action].filter((x) => x !== undefined && x !== null);
  return parts.map(txt).join(" → ");
}

function chainRow(ev) {
  const tr = el("tr");
  tr.dataset.seq = String(ev.seq);
  tr.dataset.kind = txt(ev.kind);
  const kindCls = ev.kind === "gate.deny" ? "deny" : ev.kind === "gate.permit" ? "permit" : "";
  tr.append(el("td", txt(ev.seq)), el("td", txt(ev.kind), kindCls), el("td", txt(ev.source)),
    el("td", who(ev)), el("td", String(ev.hash || "").slice(0, 16), "mono"));
  return tr;
}

// A decision's receipt: its inclusion proof under a signed tree head.
async function showReceipt(seq, cell) {
  cell.textContent = "…";
  const r = await fetch("/api/chain/receipt/" + seq, { headers: headers() });
  const v = await r.json().catch(() => ({}));
  if (!r.ok) { cell.textContent = v.error || String(r.status); cell.className = "deny"; return; }
  const head = v.head || {};
  cell.textContent = "in tree of " + txt(head.tree_size) + " · " + txt((v.proof || []).length) + " hashes";
  cell.className = "permit";
  cell.title = JSON.stringify(v);
}

function decisionRow(ev) {
  const p = ev.payload || {};
  const tr = el("tr");
  tr.dataset.seq = String(ev.seq);
  const d = ev.kind.slice("gate.".length);
  const rc = el("td");
  const b = el("button", "receipt", "receipt");
  b.type = "button";
  b.onclick = () => showReceipt(ev.seq, rc);
  rc.append(b);
  tr.append(el("td", txt(ev.seq)), el("td", d, d === "permit" ? "permit" : d === "defer" ? "state-pending" : "deny"),
    el("td", txt(p.agent || p.principal)), el("td", txt(p.action)),
    el("td", txt(p.reason || p.rule || p.escalation || null)), rc);
  return tr;
}

// New chain events on top; at most MAX_CHAIN_ROWS kept.
function addChain(events, fresh) {
  const chain = $("#chain tbody");
  const decisions = $("#decisions tbody");
  for (const tb of [chain, decisions]) {
    const hint = tb.querySelector("td.hint");
    if (hint && events.length) hint.parentElement.remove();
  }
  for (const ev of events) {
    if (lastSeq !== null && ev.seq <= lastSeq) continue;
    lastSeq = ev.seq;
    const row = chainRow(ev);
    if (fresh) row.classList.add("fresh");
    chain.prepend(row);
    if (String(ev.kind).startsWith("gate.")) {
      const d = decisionRow(ev);
      if (fresh) d.classList.add("fresh");
      decisions.prepend(d);
    }
  }
  for (const tb of [chain, decisions]) {
    while (tb.rows.length > MAX_CHAIN_ROWS) tb.deleteRow(tb.rows.length - 1);
  }
}

function units(s) {
  const box = $("#units");
  box.replaceChildren();
  const st = s.status || {};
  const subs = st.subsystems || {};
  const dl = el("dl");
  for (const [name, v] of Object.entries(subs)) dl.append(el("dt", name), el("dd", txt(v)));
  box.append(dl);
  for (const name of ["ecc", "cluster"]) {
    if (s[name] === undefined) continue;
    const d = el("dl");
    d.id = "unit-" + name;
    const v = s[name];
    d.append(el("dt", name), el("dd", v && v.error ? v.error : JSON.stringify(v, null, 1)));
    box.append(d);
  }
}

function render(s) {
  const st = s.status || {};
  $("#kernel").textContent = st.error ? "kernel: " + st.error
    : "kernel: " + txt(st.state) + " · " + txt(st.processes) + " processes · chain " + txt((st.chain || {}).len) + " events";
  fill("#processes tbody", s.ps, processRow, "no processes", 11);
  fill("#apps tbody", s.apps, appRow, "no apps installed", 6);
  fill("#escalations tbody", s.escalations, escalationRow, "no escalations", 7);
  if (Array.isArray(s.chain)) {
    if (lastSeq === null) {
      fill("#chain tbody", [], chainRow, "no events", 5);
      fill("#decisions tbody", [], decisionRow, "no decisions", 6);
    }
    addChain(s.chain, lastSeq !== null);
  }
  units(s);
}

function authorised(ok, why) {
  const a = $("#auth-status");
  a.textContent = ok ? "token ok" : why;
  a.className = "badge " + (ok ? "ok" : "bad");
}

async function refresh() {
  const r = await fetch("/api/snapshot", { headers: headers() });
  if (r.status === 401) {
    authorised(false, "no valid token");
    problem("Not authorised: open the URL that `weaver ui` (or `weaver run --ui`) prints; it carries the token.");
    return false;
  }
  authorised(true);
  render(await r.json());
  return true;
}

function follow() {
  const since = lastSeq === null ? "" : "?since=" + (lastSeq + 1);
  const es = new EventSource("/api/events" + since);
  es.onopen = () => { const l = $("#live"); l.textContent = "live"; l.className = "badge ok"; };
  es.onerror = () => { const l = $("#live"); l.textContent = "reconnecting"; l.className = "badge off"; };
  es.addEventListener("chain", (m) => addChain(JSON.parse(m.data), true));
  es.addEventListener("snapshot", (m) => render(JSON.parse(m.data)));
  es.addEventListener("problem", (m) => problem(JSON.parse(m.data).error));
}

$("#chain-verify").onclick = async () => {
  const out = $("#chain-verify-result");
  out.textContent = "verifying…";
  const r = await fetch("/api/chain/verify", { headers: headers() });
  const v = await r.json().catch(() => ({}));
  if (!r.ok) { out.textContent = "error: " + (v.error || r.status); out.className = "deny"; return; }
  const ok = v.ok === true;
  const chain = v.chain || {};
  const receipts = v.receipts || {};
  let line = (ok ? "verified" : "NOT verified") + " · " + txt(chain.events) + " events · " +
    txt(chain.heads) + " signed heads · " + txt(receipts.receipts) + " receipts checked";
  const bad = chain.first_bad || receipts.first_bad;
  if (bad) line += " · first bad: #" + txt(bad[0]) + " " + txt(bad[1]);
  out.textContent = line;
  out.className = ok ? "permit" : "deny";
  out.title = JSON.stringify(v);
};

refresh().then((ok) => { if (ok) follow(); }).catch((e) => problem(String(e)));
