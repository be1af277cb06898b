// Berth web UI: the apps on this box (sessions and Nuvla deployments), a
// launcher for sessions, the control-plane link, live telemetry and session
// logs. Plain JavaScript, no dependencies. It talks to berthd's local API
// with fetch and one EventSource; every value from the API reaches the page
// through textContent or attribute setters, never as HTML.
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const VIEWS = ["apps", "launch", "box", "telemetry", "logs"];
  const APPS_POLL_MS = 5000; // fallback when events are quiet
  const STATUS_POLL_MS = 2000; // on the Box view
  const STATUS_IDLE_MS = 10000; // elsewhere (the sidebar pill)
  const LOGS_POLL_MS = 2000;
  const CHART_POINTS = 240;

  // ---- API ----------------------------------------------------------------

  class APIError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function request(method, path, body, contentType) {
    const headers = { Accept: "application/json" };
    if (contentType) headers["Content-Type"] = contentType;
    let resp;
    try {
      resp = await fetch(path, { method, body, headers, credentials: "same-origin", cache: "no-store" });
    } catch (err) {
      throw new APIError(0, String(err && err.message ? err.message : err));
    }
    if (!resp.ok) {
      let msg = resp.statusText || "HTTP " + resp.status;
      try {
        const b = await resp.json();
        if (b && b.message) msg = b.message;
      } catch (_) {
        // not JSON: keep the status text
      }
      throw new APIError(resp.status, msg);
    }
    return resp;
  }

  const getJSON = async (path) => (await request("GET", path)).json();
  const getText = async (path) => (await request("GET", path)).text();
  const postForm = async (path, params) =>
    (await request("POST", path, params.toString(), "application/x-www-form-urlencoded")).text();
  const postJSON = async (path, obj) => (await request("POST", path, JSON.stringify(obj), "application/json")).text();
  const del = (path) => request("DELETE", path);
  const sessionPath = (id) => "/api/v1/session/" + encodeURIComponent(id);

  // ---- Formatting ---------------------------------------------------------

  function parseTime(s) {
    if (!s) return null;
    const t = new Date(s);
    if (isNaN(t.getTime()) || t.getUTCFullYear() <= 1) return null;
    return t;
  }

  function duration(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + "s";
    let m = Math.floor(s / 60);
    if (m < 60) return m + "m" + (s % 60 && m < 10 ? " " + (s % 60) + "s" : "");
    const h = Math.floor(m / 60);
    m %= 60;
    if (h < 24) return h + "h" + (m ? " " + m + "m" : "");
    const d = Math.floor(h / 24);
    return d + "d" + (h % 24 ? " " + (h % 24) + "h" : "");
  }

  const ago = (t) => (t ? duration(Date.now() - t.getTime()) + " ago" : "never");
  const stamp = (t) => (t ? t.toLocaleString() : "");

  function bytes(n) {
    if (!isFinite(n) || n <= 0) return "0 B";
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) {
      n /= 1024;
      i++;
    }
    return (n >= 100 || i === 0 ? Math.round(n) : n.toFixed(1)) + " " + u[i];
  }

  // quantity parses skaha's "95M", "8G", "512Ki" into bytes.
  function quantity(s) {
    const m = /^([\d.]+)\s*([KMGTP]?)(i?)B?$/i.exec(String(s || "").trim());
    if (!m) return NaN;
    const pow = " KMGTP".indexOf(m[2].toUpperCase() || " ");
    return parseFloat(m[1]) * Math.pow(m[3] ? 1024 : 1000, Math.max(0, pow));
  }

  const OK = ["online", "standalone", "running", "succeeded", "success", "connected", "completed"];
  const WARN = ["activating", "commissioning", "partial", "accepted", "offline", "starting", "restarting", "created", "pending", "terminating", "queued"];
  const BAD = ["error", "failed", "missing", "decommissioned", "dead", "exited", "unhealthy"];

  function pillClass(state) {
    const s = String(state || "").toLowerCase();
    if (OK.includes(s)) return "pill pill-ok";
    if (WARN.includes(s)) return "pill pill-warn";
    if (BAD.includes(s)) return "pill pill-bad";
    return "pill pill-neutral";
  }

  function setPill(node, state, label) {
    const cls = pillClass(state);
    if (node.className !== cls) node.className = cls;
    const text = label || state || "unknown";
    if (node.textContent !== text) node.textContent = text;
  }

  function el(tag, props, children) {
    const e = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === "text") e.textContent = v;
        else if (k === "className") e.className = v;
        else if (k === "hidden") e.hidden = true;
        else e.setAttribute(k, v === true ? "" : v);
      }
    }
    for (const c of children || []) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function setText(node, text) {
    text = text == null ? "" : String(text);
    if (node.textContent !== text) node.textContent = text;
  }

  function withCode(text) {
    return String(text)
      .split("`")
      .map((part, i) => (i % 2 ? el("code", { text: part }) : document.createTextNode(part)));
  }

  // ---- Desktop integration -------------------------------------------------

  // openURL opens a session in the default browser: through the Wails
  // runtime in the desktop app, a new tab in a browser.
  function openURL(url) {
    const rt = window.runtime;
    if (rt && typeof rt.BrowserOpenURL === "function") {
      rt.BrowserOpenURL(url);
      return;
    }
    window.open(url, "_blank", "noopener,noreferrer");
  }

  async function copyText(text) {
    const rt = window.runtime;
    if (rt && typeof rt.ClipboardSetText === "function") {
      await rt.ClipboardSetText(text);
      return;
    }
    if (navigator.clipboard && navigator.clipboard.writeText) {
      await navigator.clipboard.writeText(text);
      return;
    }
    throw new Error("the clipboard is not available here");
  }

  function tokenOf(url) {
    try {
      const u = new URL(url, location.href);
      return u.searchParams.get("token") || u.searchParams.get("password") || "";
    } catch (_) {
      return "";
    }
  }

  // ---- Toasts, banner, dialog ----------------------------------------------

  function toast(text, bad) {
    const t = el("div", { className: bad ? "toast bad" : "toast", text });
    $("toasts").append(t);
    setTimeout(() => t.remove(), bad ? 7000 : 3500);
  }

  let bannerKey = "";
  function showBanner(kind, title, text, hint) {
    const key = [kind, title, text, hint].join("|");
    if (key === bannerKey) return;
    bannerKey = key;
    const b = $("banner");
    b.className = kind === "bad" ? "banner bad" : "banner";
    $("banner-title").textContent = title;
    $("banner-text").replaceChildren(...withCode(text));
    $("banner-hint").replaceChildren(...withCode(hint || ""));
    $("banner-hint").hidden = !hint;
    b.hidden = false;
  }

  function hideBanner() {
    if (!bannerKey) return;
    bannerKey = "";
    $("banner").hidden = true;
  }

  function showError(err) {
    if (err.status === 401) {
      showBanner(
        "bad",
        "Not authorised",
        err.message || "This page has no valid token for berthd.",
        "Open the address berthd printed when it started (it ends in ?token=\u2026); " +
          "on the box, `sudo journalctl -u berthd | grep token` shows it again."
      );
      setPill($("box-state"), "error", "not authorised");
    } else if (err.status === 0 || err.status === 502 || err.status === 503 || err.status === 504) {
      showBanner(
        "bad",
        "berthd is unreachable",
        "The page cannot reach berthd" + (err.message ? " (" + err.message + ")" : "") + ". It keeps retrying every few seconds.",
        "Check that berthd is running: `systemctl status berthd`."
      );
      setPill($("box-state"), "error", "unreachable");
    } else {
      showBanner("warn", "berthd answered with an error", err.message || "HTTP " + err.status, "");
    }
  }

  // confirmDialog asks a yes/no question; Enter confirms, Escape cancels.
  function confirmDialog(title, text, okLabel) {
    const d = $("confirm");
    $("confirm-title").textContent = title;
    $("confirm-text").textContent = text;
    $("confirm-ok").textContent = okLabel;
    const back = document.activeElement;
    return new Promise((resolve) => {
      d.addEventListener(
        "close",
        () => {
          resolve(d.returnValue === "ok");
          if (back && back.isConnected) back.focus();
        },
        { once: true }
      );
      d.returnValue = "";
      d.showModal();
      $("confirm-ok").focus();
    });
  }

  // ---- State ----------------------------------------------------------------

  const state = {
    view: "",
    sessions: [], // client.Session
    sessionsAvailable: true,
    sessionsNote: "", // why sessions are not available, if they are not
    apps: [], // client.App
    usage: {}, // app id -> client.AppUsage (from telemetry)
    loaded: false,
    status: null,
    context: null,
    images: new Map(), // type -> []client.Image
    launchType: "notebook",
    launchID: "",
    logsID: "",
  };

  // ---- Router and keyboard ---------------------------------------------------

  function route() {
    const [view, arg] = decodeURIComponent(location.hash.replace(/^#/, "")).split("/");
    const v = VIEWS.includes(view) ? view : "apps";
    if (v === "logs") setLogsSession(arg || state.logsID);
    if (v === state.view) return;
    state.view = v;
    for (const name of VIEWS) $("view-" + name).hidden = name !== v;
    for (const a of document.querySelectorAll("#nav a")) {
      if (a.dataset.view === v) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    const heading = $("view-" + v).querySelector("h1");
    document.title = "Berth \u2014 " + (heading ? heading.textContent : v);
    if (v === "launch") enterLaunch();
    if (v === "box") pollStatus();
    if (v === "telemetry") drawCharts();
    if (v === "logs") pollLogs();
  }

  function typing(target) {
    const t = target && target.tagName;
    return t === "INPUT" || t === "SELECT" || t === "TEXTAREA" || (target && target.isContentEditable);
  }

  document.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
    if ($("confirm").open) return;
    if (typing(e.target)) {
      if (e.key === "Escape" && e.target.id === "apps-filter") {
        e.target.value = "";
        applyFilter();
        e.target.blur();
      }
      return;
    }
    const i = "12345".indexOf(e.key);
    if (i >= 0 && e.key.length === 1) {
      e.preventDefault();
      location.hash = VIEWS[i];
      $("main").focus({ preventScroll: true });
    } else if (e.key === "/" && state.view === "apps") {
      e.preventDefault();
      $("apps-filter").focus();
    }
  });

  // ---- Events ---------------------------------------------------------------

  let es = null;
  let eventsLive = false;
  function connectEvents() {
    if (!window.EventSource) return;
    es = new EventSource("/api/v1/events");
    const live = $("live");
    es.onopen = () => {
      eventsLive = true;
      live.textContent = "Live";
      live.className = "live muted on";
      scheduleApps(0);
    };
    es.onerror = () => {
      eventsLive = false;
      live.textContent = "Reconnecting\u2026";
      live.className = "live muted";
      if (es.readyState === EventSource.CLOSED) {
        es = null;
        setTimeout(connectEvents, 5000);
      }
    };
    const on = (type, fn) =>
      es.addEventListener(type, (m) => {
        let ev;
        try {
          ev = JSON.parse(m.data);
        } catch (_) {
          return;
        }
        fn(ev && ev.data !== undefined ? ev.data : ev);
      });
    on("app", () => scheduleApps(150));
    on("session", (d) => {
      onSessionEvent(d);
      scheduleApps(100);
    });
    on("pull", onPull);
    on("job", () => fetchStatus());
    on("status", (d) => (d && d.state ? renderStatus(d) : fetchStatus()));
    on("telemetry", onSample);
    on("catalog", () => {
      state.images.clear();
      if (state.view === "launch") loadImages();
    });
    on("dropped", () => {
      es.close();
      es = null;
      setTimeout(connectEvents, 1000);
    });
  }

  // ---- Apps -------------------------------------------------------------------

  let appsTimer = 0;
  let appsInFlight = null;
  function scheduleApps(delay) {
    clearTimeout(appsTimer);
    appsTimer = setTimeout(refreshApps, delay);
  }

  async function refreshApps() {
    clearTimeout(appsTimer);
    if (appsInFlight) return appsInFlight;
    appsInFlight = (async () => {
      try {
        const [apps, sessions] = await Promise.all([
          getJSON("/api/v1/apps"),
          getJSON("/api/v1/session").catch((err) => {
            // No sessions here (an older berthd), or none for this
            // caller: the apps still show; Launch says why.
            if (err.status === 404 || err.status === 405 || err.status === 403) {
              state.sessionsNote = err.status === 403 ? err.message : "";
              return null;
            }
            throw err;
          }),
        ]);
        state.apps = Array.isArray(apps) ? apps : [];
        state.sessionsAvailable = sessions !== null;
        state.sessions = Array.isArray(sessions) ? sessions : [];
        state.loaded = true;
        hideBanner();
        renderApps();
        renderLogsChoices();
        if (state.view === "launch" && !nameEdited) $("launch-name").value = nextName(state.launchType);
      } catch (err) {
        showError(err instanceof APIError ? err : new APIError(-1, String(err)));
        $("apps-loading").hidden = true;
      } finally {
        appsInFlight = null;
        if (!document.hidden) appsTimer = setTimeout(refreshApps, APPS_POLL_MS);
      }
    })();
    return appsInFlight;
  }

  const KIND_LABEL = {
    "nuvla-component": "Nuvla app",
    "nuvla-application": "Nuvla compose",
    "nuvla-stack": "Nuvla stack",
    session: "session",
  };

  // sessionApp finds the App berthd runs for a session (for its usage).
  function sessionUsage(s, byName) {
    const u = state.usage;
    if (u[s.id]) return u[s.id];
    const a = byName.get(s.id) || byName.get(s.name);
    return a ? u[a.id] : null;
  }

  // models turns sessions and apps into the rows of the Apps table.
  function models() {
    const now = Date.now();
    const out = [];
    const byName = new Map();
    for (const a of state.apps) {
      if (a.kind === "session") {
        byName.set(a.name || a.id, a);
        const tail = String(a.id).split(/[-_]/).pop();
        if (tail) byName.set(tail, a);
      }
    }
    for (const s of state.sessions) {
      const u = sessionUsage(s, byName);
      const started = parseTime(s.startTime);
      const cpu = s.cpuCoresInUse !== undefined && s.cpuCoresInUse !== "" ? parseFloat(s.cpuCoresInUse) * 100 : u ? u["cpu-percent"] : NaN;
      const mem = s.ramInUse ? quantity(s.ramInUse) : u ? u["mem-bytes"] : NaN;
      out.push({
        key: "s:" + s.id,
        session: s,
        id: s.id,
        name: s.name || s.id,
        sub: s.id + (s.image ? " \u00b7 " + s.image : ""),
        type: s.type || "session",
        status: s.status || "unknown",
        statusTitle: s.message || "",
        owner: s.userid || "",
        age: started ? duration(now - started.getTime()) : "\u2014",
        ageTitle: stamp(started),
        cpu,
        mem,
        url: s.status === "Running" ? s.connectURL || "" : "",
        token: s.connectURL ? tokenOf(s.connectURL) : "",
        canStop: s.status !== "Terminating",
        canRenew: s.status === "Running" || s.status === "Pending",
        hasLogs: true,
        sortName: (s.name || s.id).toLowerCase(),
      });
    }
    for (const a of state.apps) {
      if (a.kind === "session" && state.sessionsAvailable) continue;
      const u = state.usage[a.id];
      const created = parseTime(a.created);
      const urls = Object.values(a.urls || {});
      const st = a.state || "unknown";
      out.push({
        key: "a:" + a.id,
        app: a,
        id: a.id,
        name: a.name || a.id,
        sub: a.source === "unmanaged" ? "not managed by berthd (left alone)" : a.name && a.name !== a.id ? a.id : a.source === "nuvla" ? "from Nuvla" : "",
        type: KIND_LABEL[a.kind] || a.kind || "app",
        status: a.desired && a.desired !== st && a.desired !== "unknown" ? st + " (wanted " + a.desired + ")" : st,
        pillState: st,
        statusTitle: (a.services || []).map((s) => s.name + ": " + (s.status || s.state)).join("\n"),
        owner: a.owner || (a.source === "nuvla" ? "Nuvla" : ""),
        age: created ? duration(Date.now() - created.getTime()) : "\u2014",
        ageTitle: stamp(created),
        cpu: u ? u["cpu-percent"] : NaN,
        mem: u ? u["mem-bytes"] : NaN,
        url: urls.find((x) => /^https?:\/\//i.test(x)) || "",
        token: "",
        canStop: false,
        canRenew: false,
        hasLogs: false,
        sortName: (a.name || a.id).toLowerCase(),
      });
    }
    out.sort((x, y) => (x.sortName < y.sortName ? -1 : x.sortName > y.sortName ? 1 : x.key < y.key ? -1 : 1));
    return out;
  }

  // rowsByKey keeps one <tr> per app; updates touch only what changed.
  const rowsByKey = new Map();
  let painted = false;

  function action(act, label, title, cls) {
    return el("button", { type: "button", className: "icon-btn" + (cls ? " " + cls : ""), "data-act": act, title, text: label });
  }

  function newRow(m) {
    const c = {
      name: el("strong"),
      sub: el("span", { className: "sub mono" }),
      type: el("td"),
      pill: el("span", { className: "pill pill-neutral" }),
      owner: el("td"),
      age: el("td", { className: "num" }),
      cpu: el("span"),
      cpuBar: el("span"),
      mem: el("td", { className: "num" }),
      open: action("open", "Open", "Open in the browser"),
      copy: action("copy", "Token", "Copy the session's access token"),
      logs: action("logs", "Logs", "Follow the session's output"),
      renew: action("renew", "Renew", "Extend the session's expiry"),
      stop: action("stop", "Stop", "Stop and remove the session", "danger"),
    };
    const statusTd = el("td", null, [c.pill]);
    c.statusTd = statusTd;
    const tr = el("tr", { "data-key": m.key }, [
      el("td", { className: "name" }, [c.name, c.sub]),
      c.type,
      statusTd,
      c.owner,
      c.age,
      el("td", { className: "num" }, [c.cpu, el("span", { className: "bar", "aria-hidden": "true" }, [c.cpuBar])]),
      c.mem,
      el("td", { className: "acts" }, [c.open, c.copy, c.logs, c.renew, c.stop]),
    ]);
    return { tr, c, v: {} };
  }

  function put(row, key, value, apply) {
    if (row.v[key] === value) return;
    row.v[key] = value;
    apply(value);
  }

  function updateRow(row, m) {
    const c = row.c;
    row.m = m;
    put(row, "name", m.name, (v) => setText(c.name, v));
    put(row, "sub", m.sub, (v) => setText(c.sub, v));
    put(row, "type", m.type, (v) => setText(c.type, v));
    put(row, "status", m.status + "|" + (m.pillState || m.status), () => setPill(c.pill, m.pillState || m.status, m.status));
    put(row, "statusTitle", m.statusTitle, (v) => (v ? c.statusTd.setAttribute("title", v) : c.statusTd.removeAttribute("title")));
    put(row, "owner", m.owner || "\u2014", (v) => setText(c.owner, v));
    put(row, "age", m.age, (v) => setText(c.age, v));
    put(row, "ageTitle", m.ageTitle, (v) => c.age.setAttribute("title", v));
    const cpu = isFinite(m.cpu) ? (m.cpu < 10 ? m.cpu.toFixed(1) : Math.round(m.cpu)) + "%" : "\u2014";
    put(row, "cpu", cpu, (v) => setText(c.cpu, v));
    const cores = (lastSample && lastSample.cpu && lastSample.cpu.cores) || navigator.hardwareConcurrency || 1;
    const w = isFinite(m.cpu) ? Math.min(100, m.cpu / cores) : 0;
    put(row, "cpuBar", w, (v) => (c.cpuBar.style.width = v.toFixed(1) + "%"));
    put(row, "mem", isFinite(m.mem) ? bytes(m.mem) : "\u2014", (v) => setText(c.mem, v));
    put(row, "open", !!m.url, (v) => (c.open.hidden = !v));
    put(row, "copy", !!m.token, (v) => (c.copy.hidden = !v));
    put(row, "logs", m.hasLogs, (v) => (c.logs.hidden = !v));
    put(row, "renew", m.canRenew, (v) => (c.renew.hidden = !v));
    put(row, "stop", !!m.session, (v) => (c.stop.hidden = !v));
    put(row, "stopOK", m.canStop, (v) => (c.stop.disabled = !v));
    put(row, "label", m.name, (v) => {
      c.open.setAttribute("aria-label", "Open " + v);
      c.copy.setAttribute("aria-label", "Copy the token of " + v);
      c.logs.setAttribute("aria-label", "Logs of " + v);
      c.renew.setAttribute("aria-label", "Renew " + v);
      c.stop.setAttribute("aria-label", "Stop " + v);
    });
  }

  function renderApps() {
    performance.mark("berth-apps-start");
    const list = models();
    const body = $("apps-body");
    const seen = new Set();
    // The first paint builds every row off-document and inserts them at
    // once; later updates move only rows whose position changed.
    const fresh = body.firstChild ? null : document.createDocumentFragment();
    let i = 0;
    for (const m of list) {
      seen.add(m.key);
      let row = rowsByKey.get(m.key);
      if (!row) {
        row = newRow(m);
        rowsByKey.set(m.key, row);
      }
      updateRow(row, m);
      if (fresh) fresh.append(row.tr);
      else {
        const at = body.children[i];
        if (at !== row.tr) body.insertBefore(row.tr, at || null);
      }
      i++;
    }
    if (fresh) body.append(fresh);
    for (const [key, row] of rowsByKey) {
      if (!seen.has(key)) {
        row.tr.remove();
        rowsByKey.delete(key);
      }
    }
    $("apps-loading").hidden = true;
    $("apps-empty").hidden = list.length > 0;
    $("apps-wrap").hidden = list.length === 0;
    setText($("nav-apps-count"), list.length ? String(list.length) : "");
    applyFilter();
    performance.measure("berth-apps-render", "berth-apps-start");
    if (!painted) {
      painted = true;
      const app = window.go && window.go.main && window.go.main.App;
      if (app && typeof app.Painted === "function") app.Painted("apps");
    }
  }

  function applyFilter() {
    const q = $("apps-filter").value.trim().toLowerCase();
    let shown = 0;
    for (const row of rowsByKey.values()) {
      const m = row.m;
      const hit = !q || [m.name, m.id, m.type, m.status, m.owner, m.sub].some((s) => String(s || "").toLowerCase().includes(q));
      if (row.tr.hidden === hit) row.tr.hidden = !hit;
      if (hit) shown++;
    }
    $("apps-nomatch").hidden = !q || shown > 0 || rowsByKey.size === 0;
  }

  $("apps-filter").addEventListener("input", applyFilter);

  $("apps-body").addEventListener("click", async (e) => {
    const btn = e.target.closest("button[data-act]");
    if (!btn) return;
    const row = rowsByKey.get(btn.closest("tr").dataset.key);
    if (!row) return;
    const m = row.m;
    const act = btn.dataset.act;
    try {
      if (act === "open") openURL(m.url);
      else if (act === "copy") {
        await copyText(m.token);
        toast("Token of " + m.name + " copied");
      } else if (act === "logs") location.hash = "logs/" + encodeURIComponent(m.id);
      else if (act === "renew") {
        await request("POST", sessionPath(m.id) + "?action=renew");
        toast(m.name + " renewed");
        scheduleApps(0);
      } else if (act === "stop") {
        const ok = await confirmDialog("Stop " + m.name + "?", "The session's container is stopped and removed. Files it wrote outside its mounted storage are lost.", "Stop");
        if (!ok) return;
        btn.disabled = true;
        await del(sessionPath(m.id));
        toast(m.name + " stopped");
        scheduleApps(0);
      }
    } catch (err) {
      toast((err && err.message) || String(err), true);
      btn.disabled = false;
    }
  });

  // ---- Launch -----------------------------------------------------------------

  const TYPE_LABEL = { notebook: "Notebook", contributed: "Contributed", carta: "CARTA", "desktop-app": "Desktop app", headless: "Headless" };
  const TYPES = Object.keys(TYPE_LABEL);
  let nameEdited = false;

  function buildTypes() {
    const box = $("launch-types");
    box.replaceChildren(
      ...TYPES.map((t) =>
        el("button", { type: "button", role: "radio", "data-type": t, "aria-checked": String(t === state.launchType), tabindex: t === state.launchType ? "0" : "-1", text: TYPE_LABEL[t] })
      )
    );
    box.addEventListener("click", (e) => {
      const b = e.target.closest("button[data-type]");
      if (b) selectType(b.dataset.type, true);
    });
    box.addEventListener("keydown", (e) => {
      const d = e.key === "ArrowRight" || e.key === "ArrowDown" ? 1 : e.key === "ArrowLeft" || e.key === "ArrowUp" ? -1 : 0;
      if (!d) return;
      e.preventDefault();
      const i = (TYPES.indexOf(state.launchType) + d + TYPES.length) % TYPES.length;
      selectType(TYPES[i], true);
    });
  }

  function selectType(t, focus) {
    state.launchType = t;
    for (const b of $("launch-types").children) {
      const on = b.dataset.type === t;
      b.setAttribute("aria-checked", String(on));
      b.tabIndex = on ? 0 : -1;
      if (on && focus) b.focus();
    }
    $("launch-cmd-field").hidden = t !== "headless";
    if (!nameEdited) $("launch-name").value = nextName(t);
    if (state.view === "launch") loadImages();
  }

  function nextName(prefix) {
    const used = new Set(state.sessions.map((s) => s.name));
    for (let n = 1; ; n++) if (!used.has(prefix + "-" + n)) return prefix + "-" + n;
  }

  async function enterLaunch() {
    if (!nameEdited) $("launch-name").value = nextName(state.launchType);
    if (state.sessionsNote) launchError(state.sessionsNote);
    if (!state.context) {
      try {
        state.context = await getJSON("/api/v1/context");
      } catch (err) {
        state.context = { cores: { options: [] }, memoryGB: { options: [] } };
        if (err.status !== 404) launchError(err.message);
      }
      fillResources();
    }
    loadImages();
  }

  function fillResources() {
    const cx = state.context || {};
    const fill = (sel, opt, unit) => {
      const opts = (opt && opt.options) || [];
      const def = opt && opt.default;
      sel.replaceChildren(
        el("option", { value: "", text: "Flexible" + (opt && opt.defaultLimit ? " (up to " + opt.defaultLimit + unit + ")" : "") }),
        ...opts.map((n) => el("option", { value: String(n), text: n + unit, selected: n === def ? "" : null }))
      );
    };
    fill($("launch-cores"), cx.cores, " cores");
    fill($("launch-ram"), cx.memoryGB, " GB");
    for (const o of $("launch-cores").options) if (o.value === "1" && o.text === "1 cores") o.text = "1 core";
  }

  async function loadImages() {
    const t = state.launchType;
    const sel = $("launch-image");
    let imgs = state.images.get(t);
    if (!imgs) {
      sel.replaceChildren(el("option", { value: "", text: "Loading\u2026" }));
      try {
        imgs = await getJSON("/api/v1/image?type=" + encodeURIComponent(t));
        if (!Array.isArray(imgs)) imgs = [];
      } catch (err) {
        imgs = [];
        if (err.status !== 404) launchError(err.message);
      }
      state.images.set(t, imgs);
      if (t !== state.launchType) return;
    }
    const prev = sel.value;
    sel.replaceChildren(
      ...imgs.map((im) =>
        el("option", {
          value: im.profile ? "profile:" + im.profile : im.id,
          text: im.profile ? im.id + " \u2014 profile " + im.profile : im.id,
        })
      )
    );
    if (prev && [...sel.options].some((o) => o.value === prev)) sel.value = prev;
    const hint = $("launch-image-hint");
    if (imgs.length === 0) {
      sel.append(el("option", { value: "", text: "No " + TYPE_LABEL[t].toLowerCase() + " images" }));
      hint.replaceChildren(...withCode("Label an image `berth.types=" + t + "` (or ask an administrator to add a registry) and it appears here."));
    } else {
      hint.textContent = imgs.length + " image" + (imgs.length > 1 ? "s" : "") + " in the catalog.";
    }
    $("launch-submit").disabled = imgs.length === 0;
  }

  function launchError(msg) {
    const e = $("launch-error");
    e.textContent = msg || "";
    e.hidden = !msg;
  }

  $("launch-name").addEventListener("input", () => {
    nameEdited = true;
    $("launch-name").removeAttribute("aria-invalid");
  });

  $("launch-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    launchError("");
    const name = $("launch-name").value.trim();
    if (!/^[A-Za-z0-9-]+$/.test(name)) {
      $("launch-name").setAttribute("aria-invalid", "true");
      $("launch-name").focus();
      launchError("The name may only contain letters, digits and dashes.");
      return;
    }
    const image = $("launch-image").value;
    if (!image) {
      launchError("Pick an image first.");
      return;
    }
    const p = new URLSearchParams();
    p.set("name", name);
    p.set("type", state.launchType);
    if (image.startsWith("profile:")) p.set("profile", image.slice(8));
    else p.set("image", image);
    if ($("launch-cores").value) p.set("cores", $("launch-cores").value);
    if ($("launch-ram").value) p.set("ram", $("launch-ram").value);
    const cmd = $("launch-cmd").value.trim();
    if (state.launchType === "headless" && cmd) {
      const parts = cmd.split(/\s+/);
      p.set("cmd", parts[0]);
      if (parts.length > 1) p.set("args", parts.slice(1).join(" "));
    }
    const btn = $("launch-submit");
    btn.disabled = true;
    try {
      const id = (await postForm("/api/v1/session", p)).trim();
      nameEdited = false;
      startProgress(id, name, image.startsWith("profile:") ? "profile " + image.slice(8) : image);
      scheduleApps(0);
    } catch (err) {
      launchError(err.message);
    } finally {
      btn.disabled = false;
    }
  });

  let launchPoll = 0;
  function startProgress(id, name, image) {
    state.launchID = id;
    $("launch-idle").hidden = true;
    $("launch-progress").hidden = false;
    setText($("lp-name"), name);
    setText($("lp-image"), image);
    setPill($("lp-status"), "pending", "Pending");
    const bar = $("lp-bar");
    bar.removeAttribute("value"); // indeterminate until the first pull event
    setText($("lp-detail"), "Starting\u2026");
    $("lp-open").hidden = true;
    $("launch-name").value = nextName(state.launchType);
    clearTimeout(launchPoll);
    launchPoll = setTimeout(() => checkLaunch(id), 1000);
  }

  async function checkLaunch(id) {
    if (id !== state.launchID) return;
    try {
      const s = await getJSON(sessionPath(id));
      showLaunchStatus(s);
      if (s.status === "Pending") launchPoll = setTimeout(() => checkLaunch(id), 2000);
    } catch (err) {
      setText($("lp-detail"), err.message);
    }
  }

  function showLaunchStatus(s) {
    if (s.id !== state.launchID) return;
    setPill($("lp-status"), s.status, s.status);
    const bar = $("lp-bar");
    if (s.status === "Running") {
      bar.value = 1;
      setText($("lp-detail"), s.connectURL ? "Running. Open it, or find it in Apps." : "Running. Follow its output in Logs.");
      const open = $("lp-open");
      open.hidden = !s.connectURL;
      open.onclick = () => openURL(s.connectURL);
    } else if (s.status === "Failed" || s.status === "Completed") {
      bar.value = s.status === "Completed" ? 1 : 0;
      setText($("lp-detail"), (s.message || s.status) + (s.exitCode !== undefined ? " (exit code " + s.exitCode + ")" : ""));
    } else if (s.message) {
      setText($("lp-detail"), s.message);
    }
  }

  function onPull(p) {
    if (!p) return;
    if (p.session === state.launchID) {
      const bar = $("lp-bar");
      if (p.total > 0) bar.value = Math.min(1, p.current / p.total);
      if (p.done) bar.value = 1;
      const parts = ["Pulling " + (p.image || "the image")];
      if (p.layers) parts.push(p.layersDone + "/" + p.layers + " layers");
      if (p.total) parts.push(bytes(p.current) + " of " + bytes(p.total));
      setText($("lp-detail"), p.error ? "Pull failed: " + p.error : p.done ? "Image pulled; starting\u2026" : parts.join(" \u00b7 "));
    }
    const row = rowsByKey.get("s:" + p.session);
    if (row && !p.done) setPill(row.c.pill, "pending", "Pulling " + (p.total ? Math.round((100 * p.current) / p.total) + "%" : "\u2026"));
    else if (row) row.v.status = ""; // the next render restores the status
  }

  function onSessionEvent(d) {
    if (!d || !d.id) return;
    if (d.id === state.launchID) {
      setPill($("lp-status"), d.status, d.status);
      if (d.status !== "Pending") checkLaunch(d.id);
    }
  }

  // ---- Box ----------------------------------------------------------------------

  let statusTimer = 0;
  async function fetchStatus() {
    try {
      const st = await getJSON("/api/v1/status");
      hideBanner();
      renderStatus(st);
    } catch (err) {
      showError(err instanceof APIError ? err : new APIError(-1, String(err)));
    }
  }

  async function pollStatus() {
    clearTimeout(statusTimer);
    if (!document.hidden) await fetchStatus();
    statusTimer = setTimeout(pollStatus, state.view === "box" ? STATUS_POLL_MS : STATUS_IDLE_MS);
  }

  function renderStatus(st) {
    state.status = st;
    const s = st.state || "unknown";
    setPill($("box-state"), s);
    setText($("st-mode"), st.mode === "nuvla" ? "Managed by Nuvla" : st.mode === "standalone" ? "Standalone" : st.mode || "\u2014");
    setPill($("st-state"), s);
    setText($("st-message"), st.message || "");

    const nv = st.nuvla;
    if (!nv) {
      $("st-endpoint").replaceChildren(el("span", { className: "muted", text: "None \u2014 this box runs standalone" }));
      setText($("st-box"), "\u2014");
      setText($("st-online"), "\u2014");
      setText($("st-heartbeat"), "\u2014");
    } else {
      const ep = nv.endpoint || "";
      $("st-endpoint").replaceChildren(/^https?:\/\//i.test(ep) ? el("a", { href: ep, target: "_blank", rel: "noopener noreferrer", text: ep }) : document.createTextNode(ep || "unknown"));
      setText($("st-box"), [nv["nuvlabox-id"], nv["box-state"]].filter(Boolean).join(" \u00b7 ") || "\u2014");
      const off = parseTime(nv["offline-since"]);
      const link = [el("span", { className: nv.online ? "pill pill-ok" : "pill pill-warn", text: nv.online ? "online" : "offline" })];
      if (!nv.online && off) link.push(el("span", { className: "sub", text: "for " + duration(Date.now() - off.getTime()) }));
      if (nv["last-error"]) link.push(el("span", { className: "sub", text: nv["last-error"] }));
      $("st-online").replaceChildren(...link);
      const last = parseTime(nv["last-heartbeat"]);
      const every = nv["heartbeat-interval"] ? "every " + nv["heartbeat-interval"] + " s" : "";
      $("st-heartbeat").replaceChildren(document.createTextNode(ago(last)), el("span", { className: "sub", text: [stamp(last), every].filter(Boolean).join(" \u00b7 ") }));
    }

    const d = st.docker || {};
    if (d.connected) {
      const v = [d.version ? "Docker " + d.version : "Docker", d["api-version"] ? "API " + d["api-version"] : ""].filter(Boolean).join(" \u00b7 ");
      $("st-docker").replaceChildren(el("span", { className: "pill pill-ok", text: "connected" }), el("span", { className: "sub", text: v }));
    } else {
      $("st-docker").replaceChildren(el("span", { className: "pill pill-bad", text: "not connected" }), el("span", { className: "sub" }, withCode(d.error || "berthd cannot reach the Docker engine. Check `systemctl status docker`.")));
    }
    const started = parseTime(st.started);
    $("st-berthd").replaceChildren(document.createTextNode(st.version ? "version " + st.version : "unknown version"), el("span", { className: "sub", text: started ? "up " + duration(Date.now() - started.getTime()) : "" }));

    // The activation form: while the box has no working control plane.
    const linked = st.mode === "nuvla" && ["activating", "commissioning", "online", "offline"].includes(s);
    $("activate-card").hidden = linked;
    renderJobs(st.jobs || []);
  }

  let jobsKey = "";
  function renderJobs(jobs) {
    $("jobs-empty").hidden = jobs.length > 0;
    $("jobs-wrap").hidden = jobs.length === 0;
    const rows = jobs.map((j) => {
      const t = parseTime(j.updated) || parseTime(j.received);
      return {
        id: j.id,
        action: j.action || "",
        target: j.target || "",
        state: j.state || "",
        message: j.message || (j.state === "failed" && j["return-code"] ? "return code " + j["return-code"] : ""),
        age: t ? duration(Date.now() - t.getTime()) + " ago" : "\u2014",
        when: stamp(t),
      };
    });
    const key = JSON.stringify(rows);
    if (key === jobsKey) return;
    jobsKey = key;
    $("jobs-body").replaceChildren(
      ...rows.map((r) => {
        const running = r.state === "running" || r.state === "accepted";
        return el("tr", null, [
          el("td", null, [el("strong", { text: r.action }), el("span", { className: "sub mono", text: r.id })]),
          el("td", { className: "mono" }, [r.target]),
          el("td", null, [el("span", { className: pillClass(r.state), text: r.state || "unknown" }), running ? el("progress", { className: "job-progress", "aria-label": r.action + " in progress" }) : null]),
          el("td", null, [r.message]),
          el("td", { className: "num", title: r.when }, [r.age]),
        ]);
      })
    );
  }

  function actError(msg) {
    $("act-error").textContent = msg || "";
    $("act-error").hidden = !msg;
  }

  $("activate-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    actError("");
    let endpoint = $("act-endpoint").value.trim().replace(/\/+$/, "");
    if (endpoint && !/^[a-z]+:\/\//i.test(endpoint)) endpoint = "https://" + endpoint;
    let id = $("act-id").value.trim();
    if (!/^https?:\/\/[^\s/]+/i.test(endpoint)) {
      $("act-endpoint").setAttribute("aria-invalid", "true");
      $("act-endpoint").focus();
      actError("The endpoint is the control plane's address, like https://nuvla.io.");
      return;
    }
    $("act-endpoint").removeAttribute("aria-invalid");
    if (!id) {
      $("act-id").setAttribute("aria-invalid", "true");
      $("act-id").focus();
      actError("Enter the box's id, as Nuvla shows it (nuvlabox/\u2026).");
      return;
    }
    $("act-id").removeAttribute("aria-invalid");
    if (!id.includes("/")) id = "nuvlabox/" + id;
    const btn = $("act-submit");
    btn.disabled = true;
    try {
      await postJSON("/api/v1/nuvla", { endpoint, "nuvlabox-id": id, insecure: $("act-insecure").checked });
      toast("Activating " + id + "\u2026");
      pollStatus();
    } catch (err) {
      actError(err.status === 403 ? err.message + " (only an administrator may connect the box)" : err.message);
    } finally {
      btn.disabled = false;
    }
  });

  // ---- Telemetry ------------------------------------------------------------------

  const series = { t: [], cpu: [], ram: [], disk: [], rx: [], tx: [] };
  let lastNet = null;
  let lastSample = null;

  function onSample(s) {
    if (!s || !s.time) return;
    addSample(s);
    state.usage = s.apps || {};
    if (state.loaded && state.view === "apps") renderApps();
    if (state.view === "telemetry") drawCharts();
  }

  function addSample(s) {
    const t = parseTime(s.time);
    if (!t) return;
    if (series.t.length && t.getTime() <= series.t[series.t.length - 1]) return;
    const ram = s.ram || {};
    let cap = 0,
      used = 0,
      rx = 0,
      tx = 0;
    for (const d of s.disks || []) {
      cap += d.capacity || 0;
      used += d.used || 0;
    }
    for (const n of s.net || []) {
      rx += n["rx-bytes"] || 0;
      tx += n["tx-bytes"] || 0;
    }
    let rxRate = NaN,
      txRate = NaN;
    if (lastNet && t.getTime() > lastNet.t) {
      const dt = (t.getTime() - lastNet.t) / 1000;
      rxRate = Math.max(0, (rx - lastNet.rx) / dt);
      txRate = Math.max(0, (tx - lastNet.tx) / dt);
    }
    lastNet = { t: t.getTime(), rx, tx };
    series.t.push(t.getTime());
    series.cpu.push((s.cpu && s.cpu.percent) || 0);
    series.ram.push(ram.total ? (100 * ram.used) / ram.total : NaN);
    series.disk.push(cap ? (100 * used) / cap : NaN);
    series.rx.push(rxRate);
    series.tx.push(txRate);
    for (const k of Object.keys(series)) if (series[k].length > CHART_POINTS) series[k].shift();
    lastSample = s;
  }

  async function loadTelemetry() {
    try {
      const tm = await getJSON("/api/v1/telemetry");
      for (const s of tm.history || []) addSample(s);
      if (tm.latest) {
        addSample(tm.latest);
        state.usage = tm.latest.apps || {};
      }
    } catch (_) {
      // telemetry off: the view says so
    }
    if (state.view === "telemetry") drawCharts();
  }

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  // chart draws one or two series as filled lines on a canvas, 0..max.
  function chart(id, lines, max, fmtValue, sub, topLabel) {
    const fig = $(id);
    const canvas = fig.querySelector("canvas");
    const w = canvas.clientWidth,
      h = canvas.clientHeight;
    if (!w || !h) return;
    const dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const g = canvas.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    g.strokeStyle = cssVar("--chart-grid");
    g.lineWidth = 1;
    for (let i = 1; i < 4; i++) {
      const y = Math.round((h * i) / 4) + 0.5;
      g.beginPath();
      g.moveTo(0, y);
      g.lineTo(w, y);
      g.stroke();
    }
    const n = series.t.length;
    const colors = [cssVar("--chart-1"), cssVar("--chart-2")];
    if (topLabel === undefined) topLabel = max + "%";
    if (topLabel) {
      g.fillStyle = cssVar("--muted");
      g.font = "11px system-ui, sans-serif";
      g.textBaseline = "top";
      g.fillText(topLabel, 2, 2);
    }
    lines.forEach((data, li) => {
      if (n === 1 && isFinite(data[0])) {
        g.fillStyle = colors[li];
        g.beginPath();
        g.arc(w - 4, h - 2 - (Math.min(max, Math.max(0, data[0])) / max) * (h - 6), 3, 0, 2 * Math.PI);
        g.fill();
      }
      if (n < 2) return;
      // The samples span the width (a sparkline of the history held).
      const x = (i) => (w * i) / (n - 1);
      const y = (v) => h - 2 - (Math.min(max, Math.max(0, v)) / max) * (h - 6);
      g.beginPath();
      let started = false;
      let first = 0;
      for (let i = 0; i < n; i++) {
        if (!isFinite(data[i])) continue;
        if (!started) {
          g.moveTo(x(i), y(data[i]));
          first = i;
          started = true;
        } else g.lineTo(x(i), y(data[i]));
      }
      if (!started) return;
      g.strokeStyle = colors[li];
      g.lineWidth = 1.75;
      g.lineJoin = "round";
      g.stroke();
      if (li === 0) {
        g.lineTo(x(n - 1), h);
        g.lineTo(x(first), h);
        g.closePath();
        g.globalAlpha = 0.12;
        g.fillStyle = colors[0];
        g.fill();
        g.globalAlpha = 1;
      }
    });
    setText(fig.querySelector(".chart-value"), fmtValue);
    setText(fig.querySelector(".chart-sub"), sub);
  }

  const last = (a) => (a.length ? a[a.length - 1] : NaN);

  // scale is the top of a percentage chart: 10, 25, 50 or 100 %, with
  // room above the highest sample.
  function scale(data) {
    const hi = Math.max(0, ...data.filter(isFinite)) * 1.2;
    return [10, 25, 50, 100].find((v) => v >= hi) || 100;
  }
  const pct = (v) => (isFinite(v) ? v.toFixed(v < 10 ? 1 : 0) + "%" : "\u2014");

  let drawQueued = false;
  function drawCharts() {
    if (drawQueued) return;
    drawQueued = true;
    requestAnimationFrame(() => {
      drawQueued = false;
      if (state.view !== "telemetry") return;
      const s = lastSample;
      $("tm-empty").hidden = !!s;
      document.querySelector(".charts").hidden = !s;
      if (!s) return;
      setText($("tm-updated"), "Last sample " + parseTime(s.time).toLocaleTimeString() + " \u00b7 " + series.t.length + " samples");
      const cpu = s.cpu || {};
      chart("chart-cpu", [series.cpu], scale(series.cpu), pct(last(series.cpu)), (cpu.cores || "?") + " cores \u00b7 load " + [cpu["load-1"], cpu["load-5"], cpu["load-15"]].map((v) => (v || 0).toFixed(2)).join(" "));
      const ram = s.ram || {};
      chart("chart-ram", [series.ram], scale(series.ram), pct(last(series.ram)), bytes((ram.used || 0) * 1048576) + " of " + bytes((ram.total || 0) * 1048576));
      let cap = 0,
        used = 0;
      for (const d of s.disks || []) {
        cap += d.capacity || 0;
        used += d.used || 0;
      }
      chart("chart-disk", [series.disk], scale(series.disk), pct(last(series.disk)), cap ? bytes(used) + " of " + bytes(cap) + " on " + (s.disks || []).length + " filesystem" + ((s.disks || []).length > 1 ? "s" : "") : "no filesystems reported");
      const peak = Math.max(1024, ...series.rx.filter(isFinite), ...series.tx.filter(isFinite));
      const rx = last(series.rx),
        tx = last(series.tx);
      const rate = (v) => (isFinite(v) ? bytes(v) + "/s" : "\u2014");
      chart("chart-net", [series.rx, series.tx], peak * 1.1, rate(rx), "in " + rate(rx) + " \u00b7 out " + rate(tx) + " (blue in, green out)", rate(peak * 1.1));
    });
  }

  window.addEventListener("resize", () => {
    if (state.view === "telemetry") drawCharts();
  });

  // ---- Logs ---------------------------------------------------------------------

  let logsTimer = 0;
  let logsText = "";

  function renderLogsChoices() {
    const sel = $("logs-session");
    const opts = [el("option", { value: "", text: state.sessions.length ? "Choose a session\u2026" : "No sessions" })];
    for (const s of state.sessions) opts.push(el("option", { value: s.id, text: (s.name || s.id) + " (" + s.type + ", " + s.status + ")" }));
    if (state.logsID && !state.sessions.some((s) => s.id === state.logsID)) opts.push(el("option", { value: state.logsID, text: state.logsID }));
    const key = opts.map((o) => o.value + "=" + o.textContent).join("|");
    if (sel.dataset.key !== key) {
      sel.dataset.key = key;
      sel.replaceChildren(...opts);
    }
    sel.value = state.logsID;
  }

  function setLogsSession(id) {
    if (id === state.logsID) return;
    state.logsID = id || "";
    logsText = "";
    $("logs-out").textContent = "";
    renderLogsChoices();
    if (state.view === "logs") pollLogs();
  }

  $("logs-session").addEventListener("change", (e) => {
    location.hash = e.target.value ? "logs/" + encodeURIComponent(e.target.value) : "logs";
  });
  $("logs-follow").addEventListener("change", () => pollLogs());

  async function pollLogs() {
    clearTimeout(logsTimer);
    const id = state.logsID;
    const out = $("logs-out");
    const empty = $("logs-empty");
    if (!id) {
      out.hidden = true;
      empty.hidden = false;
      empty.textContent = state.sessionsAvailable ? "Pick a session to see its output." : "This berthd has no sessions API; logs of Nuvla apps are fetched from Nuvla.";
      return;
    }
    try {
      const text = await getText(sessionPath(id) + "?view=logs");
      if (id !== state.logsID) return;
      const atEnd = out.scrollHeight - out.scrollTop - out.clientHeight < 40;
      if (text !== logsText) {
        if (logsText && text.startsWith(logsText)) out.append(document.createTextNode(text.slice(logsText.length)));
        else out.textContent = text;
        logsText = text;
      }
      out.hidden = !text;
      empty.hidden = !!text;
      empty.textContent = "No output yet.";
      if (atEnd && $("logs-follow").checked) out.scrollTop = out.scrollHeight;
    } catch (err) {
      out.hidden = true;
      empty.hidden = false;
      empty.textContent = err.status === 404 ? "The session " + id + " is gone." : err.message;
    }
    if (state.view === "logs" && $("logs-follow").checked && !document.hidden) logsTimer = setTimeout(pollLogs, LOGS_POLL_MS);
  }

  // ---- Start ------------------------------------------------------------------------

  document.addEventListener("visibilitychange", () => {
    if (document.hidden) return;
    refreshApps();
    pollStatus();
    if (state.view === "logs") pollLogs();
  });

  // window.berth lets the desktop app (and tests) ask for a refresh now.
  window.berth = Object.freeze({ refresh: refreshApps, status: fetchStatus });

  buildTypes();
  selectType(state.launchType, false);
  window.addEventListener("hashchange", route);
  route();
  loadTelemetry().then(() => refreshApps());
  pollStatus();
  connectEvents();
  // Without the events stream (a proxy that buffers it), telemetry is
  // polled instead.
  setInterval(() => {
    if (!eventsLive && !document.hidden) loadTelemetry().then(() => state.loaded && state.view === "apps" && renderApps());
  }, 10000);
})();
