// Berth web UI: polls berthd's local API and renders status, apps and jobs.
// Plain JavaScript, no dependencies. Every value from the API reaches the
// page through textContent or attribute setters, never as HTML.
(function () {
  "use strict";

  const POLL_MS = 2000;

  const $ = (id) => document.getElementById(id);

  // ---- API ----------------------------------------------------------------

  class APIError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function getJSON(path) {
    let resp;
    try {
      resp = await fetch(path, {
        credentials: "same-origin",
        cache: "no-store",
        headers: { Accept: "application/json" },
      });
    } catch (err) {
      throw new APIError(0, String(err && err.message ? err.message : err));
    }
    if (!resp.ok) {
      let msg = resp.statusText;
      try {
        const body = await resp.json();
        if (body && body.message) msg = body.message;
      } catch (_) {
        // not JSON: keep the status text
      }
      throw new APIError(resp.status, msg);
    }
    return resp.json();
  }

  // ---- Formatting ---------------------------------------------------------

  // parseTime returns a Date, or null for Go's zero time and bad input.
  function parseTime(s) {
    if (!s) return null;
    const t = new Date(s);
    if (isNaN(t.getTime()) || t.getUTCFullYear() <= 1) return null;
    return t;
  }

  function duration(ms) {
    let s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + "s";
    let m = Math.floor(s / 60);
    if (m < 60) return m + "m" + (s % 60 ? " " + (s % 60) + "s" : "");
    const h = Math.floor(m / 60);
    m %= 60;
    if (h < 24) return h + "h" + (m ? " " + m + "m" : "");
    const d = Math.floor(h / 24);
    return d + "d" + (h % 24 ? " " + (h % 24) + "h" : "");
  }

  // coarse is duration without seconds once past a minute (table ages).
  function coarse(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + "s";
    return duration(Math.floor(s / 60) * 60000);
  }

  function ago(t) {
    return t ? duration(Date.now() - t.getTime()) + " ago" : "never";
  }

  function stamp(t) {
    return t ? t.toLocaleString() : "";
  }

  const OK = ["online", "standalone", "running", "succeeded", "connected"];
  const WARN = ["activating", "commissioning", "partial", "accepted", "offline", "starting", "restarting", "created"];
  const BAD = ["error", "failed", "missing", "decommissioned", "dead", "exited", "unhealthy"];

  function pillClass(state) {
    const s = String(state || "").toLowerCase();
    if (OK.includes(s)) return "pill pill-ok";
    if (WARN.includes(s)) return "pill pill-warn";
    if (BAD.includes(s)) return "pill pill-bad";
    return "pill pill-neutral";
  }

  function setPill(el, state, label) {
    el.className = pillClass(state);
    el.textContent = label || state || "unknown";
  }

  function el(tag, props, children) {
    const e = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === undefined || v === null) continue;
        if (k === "text") e.textContent = v;
        else if (k === "className") e.className = v;
        else e.setAttribute(k, v);
      }
    }
    for (const c of children || []) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  // linkHost is the host that published ports are reached on: the host of
  // this page in a browser, localhost inside the desktop app.
  function linkHost() {
    const p = location.protocol;
    const h = location.hostname;
    if ((p === "http:" || p === "https:") && h && !h.endsWith(".localhost") && h !== "wails") return h;
    return "localhost";
  }

  // ports lists an app's published ports, de-duplicated across the IPv4 and
  // IPv6 bindings Docker reports for the same port.
  function appPorts(app) {
    const seen = new Set();
    const out = [];
    for (const svc of app.services || []) {
      for (const p of svc.ports || []) {
        const proto = (p.protocol || "tcp").toLowerCase();
        const key = proto + "/" + p.target + "/" + (p["host-port"] || 0);
        if (seen.has(key)) continue;
        seen.add(key);
        out.push({ proto, target: p.target, hostPort: p["host-port"] || 0, hostIP: p["host-ip"] || "" });
      }
    }
    return out;
  }

  function portNode(p) {
    const label = p.proto + "/" + p.target + (p.hostPort ? "\u2192" + p.hostPort : "");
    const loopbackOnly = p.hostIP === "127.0.0.1" || p.hostIP === "::1";
    if (p.proto === "tcp" && p.hostPort) {
      const host = loopbackOnly ? "localhost" : linkHost();
      const hostPart = host.includes(":") && !host.startsWith("[") ? "[" + host + "]" : host;
      const url = "http://" + hostPart + ":" + p.hostPort + "/";
      return el("a", {
        className: "port",
        href: url,
        target: "_blank",
        rel: "noopener noreferrer",
        title: "Open " + url,
        text: label,
      });
    }
    return el("span", { className: "port", text: label });
  }

  // ---- Rendering ----------------------------------------------------------

  // renderRows replaces tbody's rows only when what they show changed, and
  // keeps keyboard focus on the same link across a re-render.
  const lastKeys = new Map();
  function renderRows(tbody, key, build) {
    if (lastKeys.get(tbody.id) === key) return;
    lastKeys.set(tbody.id, key);
    const active = document.activeElement;
    const focusKey = active && tbody.contains(active) ? active.getAttribute("data-focus") : null;
    tbody.replaceChildren(...build());
    if (focusKey) {
      const again = tbody.querySelector('[data-focus="' + CSS.escape(focusKey) + '"]');
      if (again) again.focus();
    }
  }

  function renderStatus(st) {
    const state = st.state || "unknown";
    setPill($("box-state"), state);
    document.title = "Berth \u2014 " + state;

    $("st-mode").textContent = st.mode === "nuvla" ? "Nuvla (managed)" : st.mode === "standalone" ? "Standalone" : st.mode || "\u2014";
    setPill($("st-state"), state);
    $("st-message").textContent = st.message || "";

    const nv = st.nuvla;
    const nuvla = $("st-nuvla");
    const hb = $("st-heartbeat");
    if (!nv) {
      nuvla.replaceChildren(el("span", { className: "muted", text: "None \u2014 this box runs standalone" }));
      hb.textContent = "\u2014";
    } else {
      const children = [];
      if (nv.endpoint && /^https?:\/\//i.test(nv.endpoint)) {
        children.push(el("a", { href: nv.endpoint, target: "_blank", rel: "noopener noreferrer", text: nv.endpoint }));
      } else {
        children.push(nv.endpoint || "unknown endpoint");
      }
      children.push(" ");
      children.push(el("span", { className: nv.online ? "pill pill-ok" : "pill pill-warn", text: nv.online ? "online" : "offline" }));
      const box = [nv["nuvlabox-id"], nv["box-state"]].filter(Boolean).join(" \u00b7 ");
      if (box) children.push(el("span", { className: "sub mono", text: box }));
      const off = parseTime(nv["offline-since"]);
      if (!nv.online && off) children.push(el("span", { className: "sub", text: "Offline for " + duration(Date.now() - off.getTime()) }));
      if (nv["last-error"]) children.push(el("span", { className: "sub", text: nv["last-error"] }));
      nuvla.replaceChildren(...children);

      const last = parseTime(nv["last-heartbeat"]);
      const interval = nv["heartbeat-interval"] ? "every " + nv["heartbeat-interval"] + "s" : "";
      hb.replaceChildren(
        document.createTextNode(ago(last)),
        el("span", { className: "sub", text: [last ? stamp(last) : "", interval].filter(Boolean).join(" \u00b7 ") })
      );
    }

    const d = st.docker || {};
    const docker = $("st-docker");
    if (d.connected) {
      const v = [d.version ? "Docker " + d.version : "Docker", d["api-version"] ? "API " + d["api-version"] : ""].filter(Boolean).join(" \u00b7 ");
      docker.replaceChildren(el("span", { className: "pill pill-ok", text: "connected" }), " ", el("span", { className: "muted", text: v }));
    } else {
      docker.replaceChildren(
        el("span", { className: "pill pill-bad", text: "not connected" }),
        el("span", { className: "sub" }, withCode(d.error || "berthd cannot reach the Docker engine. Check `systemctl status docker`."))
      );
    }

    const started = parseTime(st.started);
    $("st-berthd").replaceChildren(
      document.createTextNode(st.version ? "version " + st.version : "unknown version"),
      el("span", { className: "sub", text: started ? "up " + duration(Date.now() - started.getTime()) : "" })
    );

    renderJobs(st.jobs || []);
  }

  function appState(app) {
    const state = app.state || "unknown";
    if (app.desired && app.desired !== state) {
      return { state, label: state + " (wanted " + app.desired + ")" };
    }
    return { state, label: state };
  }

  function renderApps(apps) {
    $("apps-loading").hidden = true;
    $("apps-count").textContent = apps.length ? String(apps.length) : "";
    $("apps-empty").hidden = apps.length > 0;
    $("apps-wrap").hidden = apps.length === 0;

    const now = Date.now();
    const rows = apps.map((a) => {
      const services = a.services || [];
      const running = services.filter((s) => s.state === "running").length;
      const created = parseTime(a.created);
      return {
        id: a.id,
        name: a.name || a.id,
        showID: !!a.name && a.name !== a.id,
        kind: a.kind || "",
        source: a.source || "",
        st: appState(a),
        services: services.length ? running + "/" + services.length + " running" : "none",
        serviceNames: services.map((s) => s.name + " (" + (s.state || "?") + ")").join(", "),
        ports: appPorts(a),
        age: created ? coarse(now - created.getTime()) : "\u2014",
        created: created ? stamp(created) : "",
      };
    });
    renderRows($("apps-body"), JSON.stringify(rows), () =>
      rows.map((r) =>
        el("tr", null, [
          el("td", { className: "name" }, [
            el("strong", { text: r.name }),
            r.showID ? el("span", { className: "sub mono", text: r.id }) : null,
          ]),
          el("td", null, [r.kind, r.source ? el("span", { className: "sub", text: r.source }) : null]),
          el("td", null, [el("span", { className: pillClass(r.st.state), text: r.st.label })]),
          el("td", { title: r.serviceNames }, [r.services]),
          el("td", null, [
            r.ports.length
              ? el("div", { className: "ports" }, r.ports.map((p) => {
                  const n = portNode(p);
                  n.setAttribute("data-focus", r.id + "/" + p.proto + "/" + p.target + "/" + p.hostPort);
                  return n;
                }))
              : el("span", { className: "muted", text: "\u2014" }),
          ]),
          el("td", { className: "nowrap", title: r.created }, [r.age]),
        ])
      )
    );
  }

  function renderJobs(jobs) {
    $("jobs-empty").hidden = jobs.length > 0;
    $("jobs-wrap").hidden = jobs.length === 0;
    const now = Date.now();
    const rows = jobs.map((j) => {
      const updated = parseTime(j.updated) || parseTime(j.received);
      return {
        id: j.id,
        action: j.action || "",
        target: j.target || "",
        state: j.state || "",
        message: j.message || (j.state === "failed" && j["return-code"] ? "return code " + j["return-code"] : ""),
        age: updated ? coarse(now - updated.getTime()) + " ago" : "\u2014",
        when: updated ? stamp(updated) : "",
      };
    });
    renderRows($("jobs-body"), JSON.stringify(rows), () =>
      rows.map((r) =>
        el("tr", null, [
          el("td", null, [el("strong", { text: r.action }), el("span", { className: "sub mono", text: r.id })]),
          el("td", { className: "mono" }, [r.target]),
          el("td", null, [el("span", { className: pillClass(r.state), text: r.state || "unknown" })]),
          el("td", null, [r.message]),
          el("td", { className: "nowrap", title: r.when }, [r.age]),
        ])
      )
    );
  }

  // ---- Error banner -------------------------------------------------------

  // withCode renders `backquoted` parts of a message as <code>.
  function withCode(text) {
    return String(text)
      .split("`")
      .map((part, i) => (i % 2 ? el("code", { text: part }) : document.createTextNode(part)));
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
    $("apps-loading").hidden = true;
  }

  // ---- Polling ------------------------------------------------------------

  let timer = 0;
  let inFlight = false;

  async function tick() {
    clearTimeout(timer);
    if (inFlight) return;
    if (document.hidden) {
      timer = setTimeout(tick, POLL_MS);
      return;
    }
    inFlight = true;
    try {
      const [status, apps] = await Promise.all([getJSON("/api/v1/status"), getJSON("/api/v1/apps")]);
      hideBanner();
      renderStatus(status);
      renderApps(Array.isArray(apps) ? apps : []);
      $("updated").textContent = "Updated " + new Date().toLocaleTimeString() + " \u00b7 refreshes every " + POLL_MS / 1000 + " s";
    } catch (err) {
      showError(err instanceof APIError ? err : new APIError(-1, String(err)));
    } finally {
      inFlight = false;
      timer = setTimeout(tick, POLL_MS);
    }
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) tick();
  });
  tick();
})();
