// atomlens live page: plain JavaScript, no libraries, no network beyond its own server.
"use strict";
(function () {
  const KEEP = 12;             // frames kept in the DOM (thumbnails) and in memory
  const OOD_KEEP = 2000;       // points drawn in the OOD plot
  const token = new URLSearchParams(location.search).get("token");
  const q = (id) => document.getElementById(id);
  const state = {
    frames: [], shown: null, ood: [], driftRatio: null, paused: false,
    explore: null, exploreStatic: null, decisions: 0,
  };
  q("prov-link").href = "api/files/prov.json" + (token ? "?token=" + encodeURIComponent(token) : "");

  function say(text) { q("message").textContent = text; }

  async function control(body) {
    const headers = { "Content-Type": "application/json" };
    if (token) headers["X-Atomlens-Token"] = token;
    const r = await fetch("api/control", { method: "POST", headers, body: JSON.stringify(body) });
    const answer = await r.json().catch(() => ({ error: "no answer" }));
    if (!r.ok) { say(answer.error || ("error " + r.status)); return null; }
    say(""); return answer;
  }

  // ---------------------------------------------------------------- drawing helpers
  function colour(p) {  // p_real 0 → red, 1 → green
    if (p === null || p === undefined || Number.isNaN(p)) return "#39f";
    const r = Math.round(230 * (1 - p)), g = Math.round(200 * p);
    return `rgb(${r},${g},40)`;
  }
  function drawLine(canvas, series, opts) {
    const ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height, pad = 28;
    ctx.clearRect(0, 0, W, H);
    const all = series.flatMap((s) => s.y).filter((v) => v !== null && Number.isFinite(v));
    if (opts.line !== undefined && opts.line !== null) all.push(opts.line);
    if (!all.length) return;
    let lo = Math.min(...all, opts.min ?? Infinity), hi = Math.max(...all);
    if (hi === lo) hi = lo + 1;
    const n = Math.max(...series.map((s) => s.y.length), 2);
    const X = (i) => pad + (W - pad - 6) * i / (n - 1), Y = (v) => H - 16 - (H - 26) * (v - lo) / (hi - lo);
    ctx.strokeStyle = "#ccc"; ctx.beginPath(); ctx.moveTo(pad, 4); ctx.lineTo(pad, H - 16); ctx.lineTo(W - 4, H - 16); ctx.stroke();
    ctx.fillStyle = "#555"; ctx.font = "10px sans-serif";
    ctx.fillText(hi.toPrecision(3), 2, 12); ctx.fillText(lo.toPrecision(3), 2, H - 18);
    if (opts.label) ctx.fillText(opts.label, pad + 4, 12);
    if (opts.line !== undefined && opts.line !== null) {
      ctx.strokeStyle = "#e44"; ctx.setLineDash([4, 3]); ctx.beginPath();
      ctx.moveTo(pad, Y(opts.line)); ctx.lineTo(W - 4, Y(opts.line)); ctx.stroke(); ctx.setLineDash([]);
    }
    for (const s of series) {
      ctx.strokeStyle = s.colour; ctx.beginPath(); let started = false;
      s.y.forEach((v, i) => {
        if (v === null || !Number.isFinite(v)) { started = false; return; }
        if (!started) { ctx.moveTo(X(i), Y(v)); started = true; } else ctx.lineTo(X(i), Y(v));
      });
      ctx.stroke();
      if (s.dots) { ctx.fillStyle = s.colour; s.y.forEach((v, i) => { if (v !== null) ctx.fillRect(X(i) - 1.5, Y(v) - 1.5, 3, 3); }); }
    }
  }
  function loadImage(src) {
    return new Promise((resolve) => { const im = new Image(); im.onload = () => resolve(im); im.src = src; });
  }

  // ---------------------------------------------------------------- frames
  async function showFrame(f) {
    state.shown = f;
    const c = q("frame"), ctx = c.getContext("2d");
    const scale = Math.min(c.width / f.width, c.height / f.height);
    f.scale = scale;
    if (f.image) { const im = await loadImage(f.image); if (state.shown !== f) return;
      ctx.imageSmoothingEnabled = false; ctx.clearRect(0, 0, c.width, c.height);
      ctx.drawImage(im, 0, 0, f.width * scale, f.height * scale); }
    const ix = f.columns.indexOf("x_px"), iy = f.columns.indexOf("y_px");
    let ip = f.columns.indexOf("p_real"); if (ip < 0) ip = f.columns.indexOf("p_detect");
    const r = Math.max(2, 2.5 * scale * Math.min(1, 160 / f.width));
    for (const a of f.atoms) {
      ctx.strokeStyle = colour(ip >= 0 ? a[ip] : null); ctx.lineWidth = 1.5;
      ctx.beginPath(); ctx.arc(a[ix] * scale, a[iy] * scale, r, 0, 2 * Math.PI); ctx.stroke();
    }
    for (const l of f.labels || []) {
      ctx.strokeStyle = l.kind === "false" ? "#f0f" : "#0ff"; ctx.lineWidth = 2;
      const x = l.x_px * scale, y = l.y_px * scale;
      ctx.beginPath(); ctx.moveTo(x - 5, y - 5); ctx.lineTo(x + 5, y + 5); ctx.moveTo(x + 5, y - 5); ctx.lineTo(x - 5, y + 5); ctx.stroke();
    }
    c.dataset.index = f.index;
    q("frame-caption").textContent = `${f.name}: ${f.n_atoms} atoms, ${f.latency_ms} ms, OOD ratio ${f.ratio === null ? "–" : f.ratio.toFixed(2)}; ` +
      `colour: ${ip < 0 ? "none" : f.columns[ip]} (red 0 → green 1)`;
    const e = q("epistemic"), ectx = e.getContext("2d");
    if (f.epistemic) { const im = await loadImage(f.epistemic); ectx.clearRect(0, 0, e.width, e.height);
      ectx.drawImage(im, 0, 0, f.width * scale, f.height * scale); }
  }
  function nearestAtom(f, x, y) {
    const ix = f.columns.indexOf("x_px"), iy = f.columns.indexOf("y_px");
    let best = null, bd = Infinity;
    for (const a of f.atoms) { const d = Math.hypot(a[ix] - x, a[iy] - y); if (d < bd) { bd = d; best = a; } }
    return [best, bd];
  }
  function framePixel(ev) {
    const c = q("frame"), rect = c.getBoundingClientRect(), f = state.shown;
    const sx = c.width / rect.width;
    return [(ev.clientX - rect.left) * sx / f.scale, (ev.clientY - rect.top) * sx / f.scale];
  }
  q("frame").addEventListener("mousemove", (ev) => {
    const f = state.shown; if (!f) return;
    const [x, y] = framePixel(ev), [a, d] = nearestAtom(f, x, y);
    if (!a || d > 6) { q("atom-row").textContent = `x ${x.toFixed(1)} px, y ${y.toFixed(1)} px`; return; }
    q("atom-row").textContent = f.columns.map((c, i) => `${c}=${a[i]}`).join("  ");
  });
  q("frame").addEventListener("click", async (ev) => {
    const f = state.shown; if (!f) return;
    const mode = document.querySelector("input[name=mark]:checked").value;
    if (mode === "none") return;
    let [x, y] = framePixel(ev);
    if (mode === "false") {
      const [a, d] = nearestAtom(f, x, y); if (!a || d > 6) { say("no atom there to mark false"); return; }
      x = a[f.columns.indexOf("x_px")]; y = a[f.columns.indexOf("y_px")];
    }
    const ok = await control({ action: "label", frame: f.index, kind: mode, x_px: x, y_px: y });
    if (ok) { f.labels = (f.labels || []).concat([{ kind: mode, x_px: x, y_px: y }]); showFrame(f); }
  });
  function addFrame(f) {
    state.frames.push(f);
    if (state.frames.length > KEEP) state.frames.shift();
    const box = q("thumbs");
    const im = document.createElement("img");
    im.src = f.image || ""; im.title = f.name; if (f.over) im.className = "over";
    im.dataset.index = f.index; im.addEventListener("click", () => showFrame(f));
    box.appendChild(im);
    while (box.children.length > KEEP) box.removeChild(box.firstChild);
    q("frame-count").dataset.n = Number(q("frame-count").dataset.n) + 1;
    showCount();
    q("members").textContent = `members in use: ${f.members.join(", ")} (generation ${f.generation})`;
    q("frames-panel").hidden = false; q("health-panel").hidden = false;
    showFrame(f);
  }

  // ---------------------------------------------------------------- health
  function addOod(p) {
    state.ood.push(p); if (state.ood.length > OOD_KEEP) state.ood.shift();
    state.found = Math.max(state.found || 0, p.frame + 1);
    showCount();
  }
  // frames found (every frame sends its OOD point) and, when fewer, how many were drawn:
  // the server draws at most one frame per render interval
  function showCount() {
    const drawn = Number(q("frame-count").dataset.n), found = Math.max(state.found || 0, drawn);
    q("frame-count").textContent = drawn < found ? `${found} frames (${drawn} drawn)` : `${found} frames`;
  }
  let oodQueued = false;
  function drawOod() {
    if (oodQueued) return; oodQueued = true;
    requestAnimationFrame(() => {
      oodQueued = false;
      const c = q("ood"), ys = state.ood.map((p) => p.ratio);
      drawLine(c, [{ y: ys, colour: "#36c", dots: true }], { line: state.driftRatio, min: 0, label: "OOD score / baseline (dashed: drift ratio)" });
      const last = ys.length ? ys[ys.length - 1] : null;
      c.dataset.n = ys.length; c.dataset.last = last === null ? "" : last;
      c.dataset.max = ys.length ? Math.max(...ys.filter((v) => v !== null)) : "";
      const k = q("counts"), recent = state.ood.slice(-200);
      drawLine(k, [{ y: recent.map((p) => p.n_atoms), colour: "#393" }], { label: "atoms per frame" });
      drawLine(q("latency"), [{ y: recent.map((p) => p.latency_ms), colour: "#c63" }], { label: "latency per frame [ms]" });
      k.dataset.n = recent.length; q("latency").dataset.n = recent.length;
    });
  }
  function addDecision(d) {
    const li = document.createElement("li");
    const brief = Object.entries(d.brief || {}).slice(0, 5).map(([k, v]) => `${k}=${typeof v === "number" ? +v.toPrecision(4) : v}`).join(", ");
    li.textContent = `${d.frame === null ? "start" : "frame " + d.frame}: ${d.event} ${brief}`;
    const ul = q("decisions"); ul.insertBefore(li, ul.firstChild);
    while (ul.children.length > 100) ul.removeChild(ul.lastChild);
    if (d.brief && d.brief.drift_ratio) state.driftRatio = d.brief.drift_ratio;
  }
  function addAdaptation(m) {
    const h = m.history, a = h[0], b = h[h.length - 1];
    const li = document.createElement("li");
    const f = (v) => (v === null || v === undefined ? "–" : (+v).toPrecision(3));
    li.textContent = `adaptation: ${h.length - 1} round(s); consensus atoms ${f(a.consensus_atoms)} → ${f(b.consensus_atoms)}, ` +
      `epistemic ${f(a.epistemic_train)} → ${f(b.epistemic_train)}, implausible ${f(a.holdout_implausible)} → ${f(b.holdout_implausible)}, ` +
      `human labels ${h.slice(1).map((r) => r.human_labels).join("/")}` +
      h.slice(1).filter((r) => r.undone_because).map((r) => `; round ${r.round} undone: ${r.undone_because}`).join("");
    const ul = q("adaptations"); ul.appendChild(li);
    while (ul.children.length > 20) ul.removeChild(ul.firstChild);
  }

  // ---------------------------------------------------------------- explore
  function gridMap(canvas, values, st) {
    const ctx = canvas.getContext("2d"); ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (!values) return;
    const lo = Math.min(...values), hi = Math.max(...values), s = canvas.width / st.width;
    values.forEach((v, i) => {
      const u = hi > lo ? (v - lo) / (hi - lo) : 0.5, p = st.positions[i];
      ctx.fillStyle = `rgb(${Math.round(255 * Math.min(1, 2 * u))},${Math.round(255 * Math.max(0, 2 * u - 1))},${Math.round(120 * (1 - u))})`;
      ctx.fillRect((p[0] - st.grid_step / 2) * s, (p[1] - st.grid_step / 2) * s, st.grid_step * s + 1, st.grid_step * s + 1);
    });
  }
  async function drawExplore() {
    const m = state.explore, st = state.exploreStatic; if (!m || !st) return;
    q("explore-panel").hidden = false;
    const c = q("overview"), ctx = c.getContext("2d"), s = c.width / st.width;
    if (!st.img) st.img = await loadImage(st.overview);
    ctx.drawImage(st.img, 0, 0, st.width * s, st.height * s);
    ctx.strokeStyle = "#4cf"; ctx.lineWidth = 1.2; ctx.beginPath();
    m.path.forEach((p, i) => (i ? ctx.lineTo(p[0] * s, p[1] * s) : ctx.moveTo(p[0] * s, p[1] * s))); ctx.stroke();
    m.path.forEach((p, i) => { ctx.fillStyle = m.why[i] === "human" ? "#f0f" : (m.why[i] === "seed" ? "#fff" : "#4cf");
      ctx.fillRect(p[0] * s - 2, p[1] * s - 2, 4, 4); });
    ctx.strokeStyle = "#f44"; for (const v of m.vetoed) { const p = st.positions[v];
      ctx.beginPath(); ctx.moveTo(p[0] * s - 4, p[1] * s - 4); ctx.lineTo(p[0] * s + 4, p[1] * s + 4); ctx.stroke(); }
    const pr = m.proposal, box = q("proposal");
    if (pr) {
      ctx.strokeStyle = "#ff0"; ctx.lineWidth = 2; ctx.beginPath(); ctx.arc(pr.x * s, pr.y * s, 7, 0, 2 * Math.PI); ctx.stroke();
      const model = pr.model ? Object.entries(pr.model).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(" ") : "none (seed point)";
      box.textContent = `step ${pr.step}: proposes candidate ${pr.index} at (${pr.x.toFixed(1)}, ${pr.y.toFixed(1)}) px — why: ${pr.why}` +
        (pr.acquisition === null ? "" : `, acquisition ${pr.acquisition.toPrecision(4)}`) + `; model: ${model}`;
      box.dataset.index = pr.index; box.dataset.step = pr.step;
    } else { box.textContent = m.step >= m.budget ? "budget spent" : "measuring…"; box.dataset.index = ""; }
    q("explore-step").textContent = `step ${m.step} of ${m.budget}; ${m.settings.acquisition}, β ${m.settings.beta}`;
    q("explore-step").dataset.step = m.step;
    if (!state.formTouched) { q("acq").value = m.settings.acquisition; q("beta").value = m.settings.beta; }
    gridMap(q("mean"), m.mean, st); gridMap(q("sd"), m.sd, st);
    drawLine(q("best"), [{ y: m.best_so_far, colour: "#c33", dots: true }], {});
    q("best").dataset.n = m.best_so_far.length;
  }
  q("overview").addEventListener("click", (ev) => {
    const st = state.exploreStatic; if (!st) return;
    const c = q("overview"), rect = c.getBoundingClientRect(), s = c.width / st.width, k = c.width / rect.width;
    control({ action: "measure", x: (ev.clientX - rect.left) * k / s, y: (ev.clientY - rect.top) * k / s });
  });
  const proposalIndex = () => { const v = q("proposal").dataset.index; return v === "" ? null : Number(v); };
  q("accept").addEventListener("click", () => control({ action: "accept", index: proposalIndex() }));
  q("veto").addEventListener("click", () => control({ action: "veto", index: proposalIndex() }));
  for (const id of ["acq", "beta", "scalarizer"]) q(id).addEventListener("input", () => { state.formTouched = true; });
  q("policy").addEventListener("click", () => {
    state.formTouched = false;
    const body = { action: "policy", acquisition: q("acq").value, beta: Number(q("beta").value) };
    if (q("scalarizer").value.trim()) body.scalarizer = q("scalarizer").value.trim();
    control(body);
  });
  q("pause").addEventListener("click", () => control({ action: state.paused ? "resume" : "pause" }));
  q("adapt").addEventListener("click", () => control({ action: "adapt" }));

  // ---------------------------------------------------------------- messages
  function handle(m) {
    switch (m.type) {
      case "status":
        state.paused = m.paused; q("pause").textContent = m.paused ? "resume" : "pause";
        if (m.drift_ratio) state.driftRatio = m.drift_ratio;
        q("labels-count").textContent = `${m.labels} labels`;
        q("status").textContent = m.paused ? "paused" : "live"; break;
      case "frame": addFrame(m); break;
      case "ood": addOod(m.point); drawOod(); break;
      case "ood_history": m.points.forEach(addOod); drawOod(); break;
      case "decision": addDecision(m); drawOod(); break;
      case "adaptation": addAdaptation(m); break;
      case "explore_static": state.exploreStatic = m; drawExplore(); break;
      case "explore":
        // between proposals (while measuring) the last model's maps stay on the page
        if (!m.mean && state.explore && state.explore.mean) { m.mean = state.explore.mean; m.sd = state.explore.sd; }
        state.explore = m; drawExplore(); break;
      case "error": say(m.message); break;
    }
  }
  function connect() {
    const url = new URL("ws", location.href); url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    if (token) url.searchParams.set("token", token);
    const ws = new WebSocket(url);
    ws.onopen = () => { q("status").dataset.state = "live"; q("status").textContent = "live"; };
    ws.onmessage = (ev) => handle(JSON.parse(ev.data));
    ws.onclose = () => { q("status").dataset.state = "closed"; q("status").textContent = "disconnected; retrying";
      setTimeout(connect, 1500); };
  }
  connect();
})();
