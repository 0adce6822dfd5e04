/* Tocsin page behaviour, no build step. Loaded after htmx and its ws extension.
 *
 * 1. <time datetime="…"> elements are shown in the browser's time zone (the server writes UTC).
 * 2. The live stream (/live/): the element with [data-live-stream] holds the htmx ws extension's
 *    socket. Each time the socket opens, first connection or reconnection, we send
 *      {"action": "subscribe", "after": <newest event id in the page>, "teams": [id]}
 *    and the server replays what we missed, then streams new events as htmx out-of-band
 *    fragments (afterbegin:#live-events). An event already in the page is dropped, rows stay
 *    ordered newest first, and the list is capped.
 *    Pages that show something else than the stream (the Alerts page) keep a hidden
 *    #live-events and listen instead: every new event is announced on document.body as
 *    "tocsin:live-event" (detail.kind) and as "tocsin:live-<area>" ("tocsin:live-alert" for
 *    alert.*), which an htmx element can use as a debounced trigger to re-fetch itself.
 * 3. Small conveniences: copy buttons ([data-copy]), confirmations (form[data-confirm]) and
 *    relative times (time[data-relative], "5 min"), kept current every 30 seconds.
 */
(function () {
  "use strict";

  var MAX_ROWS = 500;
  // Close codes after which the ws extension reconnects by itself; for others we do it.
  var HTMX_RECONNECTS = [1006, 1011, 1012, 1013];
  var CLOSE_UNAUTHENTICATED = 4401;

  /* ---- 1. local times ------------------------------------------------------------------- */
  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  var zoneFormat;
  try {
    zoneFormat = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" });
  } catch (e) {
    zoneFormat = null;
  }

  function zoneName(date) {
    if (!zoneFormat || !zoneFormat.formatToParts) return "";
    var parts = zoneFormat.formatToParts(date);
    for (var i = 0; i < parts.length; i++) {
      if (parts[i].type === "timeZoneName") return parts[i].value;
    }
    return "";
  }

  /* ISO-like and unambiguous at any hour: 2024-05-01 03:12:45. The zone is named once per
   * page, in the elements marked [data-tz-label] (a column head, a heading), not on every row. */
  function formatLocal(date, precision) {
    var day = date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate());
    if (precision === "date") return day;
    var time = pad(date.getHours()) + ":" + pad(date.getMinutes());
    if (precision !== "minute") time += ":" + pad(date.getSeconds());
    return day + " " + time;
  }

  function labelZone() {
    var zone = zoneName(new Date());
    if (!zone) return;
    document.querySelectorAll("[data-tz-label]").forEach(function (el) {
      el.textContent = zone;
      el.title = "Times are shown in your browser's time zone; hover a time for UTC.";
    });
  }

  function localiseTimes(root) {
    var scope = root && root.querySelectorAll ? root : document;
    var nodes = Array.prototype.slice.call(scope.querySelectorAll("time[datetime]:not([data-local])"));
    if (scope.matches && scope.matches("time[datetime]:not([data-local])")) nodes.push(scope);
    nodes.forEach(function (el) {
      var date = new Date(el.getAttribute("datetime"));
      if (isNaN(date.getTime())) return;
      if (!el.title) el.title = date.toISOString().slice(0, 19).replace("T", " ") + " UTC";
      el.textContent = formatLocal(date, el.getAttribute("data-format"));
      el.setAttribute("data-local", "");
    });
    if (scope === document) labelZone();
  }

  /* ---- 2. the live stream ---------------------------------------------------------------- */
  var live = {
    socket: null, // the current WebSocket, for debugging from the console
    connectedOnce: false,
    retryTimer: null,
    retries: 0,
    pendingReconnect: null,
    signedOut: false,
    arrived: [], // kinds of the events inserted by the current message, announced after it
  };
  window.Tocsin = { live: live, localiseTimes: localiseTimes };

  function eventList() {
    return document.getElementById("live-events");
  }

  function rowId(el) {
    return parseInt(el.getAttribute("data-event-id"), 10) || 0;
  }

  /* The newest event id the page has seen: the rows it shows, or what the server rendered. */
  function newestId(stream) {
    var newest = parseInt(stream.getAttribute("data-last-event-id"), 10) || 0;
    var list = eventList();
    if (list) {
      list.querySelectorAll("[data-event-id]").forEach(function (row) {
        newest = Math.max(newest, rowId(row));
      });
    }
    return newest;
  }

  function setStatus(state, text) {
    var el = document.getElementById("live-status");
    if (!el) return;
    el.setAttribute("data-state", state);
    var label = el.querySelector(".live-status-text");
    if (label) label.textContent = text;
  }

  function showNotice(code, html) {
    var el = document.getElementById("live-notice");
    if (!el) return;
    el.className = "notice notice-" + code;
    el.setAttribute("data-code", code);
    el.innerHTML = html;
    el.hidden = false;
  }

  function onOpen(evt) {
    var stream = evt.target.closest ? evt.target.closest("[data-live-stream]") : null;
    if (!stream) return;
    live.socket = evt.detail.event && evt.detail.event.target;
    live.retries = 0;
    var message = { action: "subscribe", after: newestId(stream) };
    var team = parseInt(stream.getAttribute("data-team-id"), 10);
    if (team) message.teams = [team];
    evt.detail.socketWrapper.send(JSON.stringify(message));
    live.connectedOnce = true;
    if (live.signedOut) {
      // Logged in again (in another tab): the stream resumes, the notice goes.
      live.signedOut = false;
      var notice = document.getElementById("live-notice");
      if (notice && notice.getAttribute("data-code") === "signed-out") notice.hidden = true;
    }
    setStatus("connected", "Connected");
  }

  function onConnecting(evt) {
    if (!evt.target.closest || !evt.target.closest("[data-live-stream]")) return;
    if (live.signedOut) return;
    setStatus(live.connectedOnce ? "reconnecting" : "connecting",
      live.connectedOnce ? "Reconnecting…" : "Connecting…");
  }

  /* Full jitter like the extension's default (up to 1 s, 2 s, 4 s …) but capped at 30 s, not
   * 64 s: at 3 a.m. a minute without the stream is too long. Used for both reconnect paths. */
  function reconnectDelay(retry) {
    var cap = Math.min(30000, 1000 * Math.pow(2, Math.min(retry, 5)));
    return 250 + Math.random() * cap;
  }

  function onClose(evt) {
    var stream = evt.target.closest ? evt.target.closest("[data-live-stream]") : null;
    if (!stream) return;
    var closed = evt.detail.event && evt.detail.event.target;
    if (live.socket && closed !== live.socket && live.socket.readyState === WebSocket.OPEN) {
      return; // an old socket finishing its close after a newer one opened: nothing to do
    }
    var code = evt.detail.event ? evt.detail.event.code : 0;
    if (code === CLOSE_UNAUTHENTICATED) {
      signedOut();
      return;
    }
    if (!live.signedOut) setStatus("reconnecting", "Reconnecting…");
    if (closed && closed !== live.socket) checkSignedIn();
    if (HTMX_RECONNECTS.indexOf(code) >= 0 || !document.body.contains(stream)) return;
    // A clean close (server restart, a lagging client cut off, the socket closed by hand):
    // the extension leaves it closed, so reconnect here. Replay fills the gap.
    var wrapper = evt.detail.socketWrapper;
    clearTimeout(live.retryTimer);
    live.pendingReconnect = function () {
      live.retryTimer = null;
      live.pendingReconnect = null;
      live.retries += 1;
      if (document.body.contains(stream)) wrapper.reconnect();
    };
    live.retryTimer = setTimeout(live.pendingReconnect, reconnectDelay(live.retries));
  }

  /* A socket that closes before it ever opened was refused or could not reach the server.
   * A refused handshake looks like a network error to the page, so ask the server whether the
   * session is still valid: an expired one should say "log in", not "reconnecting" forever. */
  function checkSignedIn() {
    if (!window.fetch) return;
    fetch(location.href, { method: "HEAD", redirect: "manual", credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.type === "opaqueredirect") signedOut();
      })
      .catch(function () { /* the server is unreachable: keep reconnecting */ });
  }

  function signedOut() {
    live.signedOut = true;
    setStatus("signed-out", "Signed out");
    var next = encodeURIComponent(location.pathname + location.search);
    showNotice("signed-out", 'Your session has ended. <a href="/accounts/login/?next=' + next +
      '">Log in again</a> to resume the live stream.');
  }

  /* Before htmx inserts an event: drop it if the page already shows it (replays and live
   * delivery can overlap around a reconnect). */
  function onOobBeforeSwap(evt) {
    if (!evt.detail.target || evt.detail.target.id !== "live-events") return;
    var fragment = evt.detail.fragment;
    var rows = fragment.querySelectorAll ? fragment.querySelectorAll("[data-event-id]") : [];
    var kept = 0;
    Array.prototype.forEach.call(rows, function (row) {
      if (row.id && document.getElementById(row.id)) {
        row.remove();
      } else {
        row.classList.add("event-new");
        live.arrived.push(row.getAttribute("data-kind") || "");
        kept += 1;
      }
    });
    if (rows.length && !kept) evt.detail.shouldSwap = false;
  }

  /* After each message: newest first, no duplicates, at most MAX_ROWS rows. */
  function tidy(stream) {
    var list = eventList();
    if (!list) return;
    var first = list.firstElementChild;
    if (first) {
      // A late-committing event (a lower id) arrives after a higher one: move it into place.
      var id = rowId(first);
      var after = first.nextElementSibling;
      while (after && rowId(after) > id) after = after.nextElementSibling;
      if (after !== first.nextElementSibling) list.insertBefore(first, after);
    }
    var seen = Object.create(null);
    Array.prototype.slice.call(list.children).forEach(function (row) {
      var key = row.getAttribute("data-event-id");
      if (key === null) return;
      if (seen[key]) row.remove();
      seen[key] = true;
    });
    while (list.children.length > MAX_ROWS) list.lastElementChild.remove();
    stream.setAttribute("data-last-event-id", String(newestId(stream)));
    localiseTimes(list);
  }

  function onAfterMessage(evt) {
    var stream = evt.target.closest ? evt.target.closest("[data-live-stream]") : null;
    if (stream) tidy(stream);
    announce();
  }

  function announce() {
    var kinds = live.arrived;
    live.arrived = [];
    kinds.forEach(function (kind) {
      var detail = { detail: { kind: kind } };
      document.body.dispatchEvent(new CustomEvent("tocsin:live-event", detail));
      var area = kind.split(".")[0];
      if (area) document.body.dispatchEvent(new CustomEvent("tocsin:live-" + area, detail));
    });
  }

  /* Back from sleep or a network change: don't wait for the back-off timer. */
  function onOnline() {
    if (live.pendingReconnect) {
      clearTimeout(live.retryTimer);
      live.pendingReconnect();
    }
  }

  /* ---- 3. conveniences ------------------------------------------------------------------- */
  function onClick(evt) {
    var button = evt.target.closest && evt.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) return;
    var text = source.value || source.textContent;
    var done = function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = "Copy"; }, 2000);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(source, done); });
    } else {
      fallbackCopy(source, done);
    }
  }

  function fallbackCopy(source, done) {
    if (source.select) source.select();
    try {
      if (document.execCommand("copy")) done();
    } catch (e) {
      /* the text stays selected for a manual copy */
    }
  }

  /* "42 s", "5 min", "3 h 20 min", "4 d": the same words as the server writes. */
  function sinceText(date) {
    var seconds = Math.max(0, Math.floor((Date.now() - date.getTime()) / 1000));
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min";
    if (seconds < 86400) {
      var minutes = Math.floor(seconds / 60);
      var rest = minutes % 60;
      return Math.floor(minutes / 60) + " h" + (rest ? " " + rest + " min" : "");
    }
    return Math.floor(seconds / 86400) + " d";
  }

  function refreshRelativeTimes() {
    document.querySelectorAll("time[data-relative][datetime]").forEach(function (el) {
      var date = new Date(el.getAttribute("datetime"));
      if (!isNaN(date.getTime())) el.textContent = sinceText(date);
    });
  }

  function onSubmit(evt) {
    var form = evt.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) evt.preventDefault();
  }

  /* ---- wiring ---------------------------------------------------------------------------- */
  document.addEventListener("htmx:wsConnecting", onConnecting);
  document.addEventListener("htmx:wsOpen", onOpen);
  document.addEventListener("htmx:wsClose", onClose);
  document.addEventListener("htmx:oobBeforeSwap", onOobBeforeSwap);
  document.addEventListener("htmx:wsAfterMessage", onAfterMessage);
  document.addEventListener("click", onClick);
  document.addEventListener("submit", onSubmit, true);
  window.addEventListener("online", onOnline);
  setInterval(refreshRelativeTimes, 30000);

  if (window.htmx) {
    window.htmx.config.wsReconnectDelay = reconnectDelay;
    window.htmx.onLoad(localiseTimes);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { localiseTimes(document); });
  } else {
    localiseTimes(document);
  }
})();

/* Header menus (<details>): one open at a time, closed by a click elsewhere or Escape. */
(function () {
  "use strict";
  function menus() {
    return document.querySelectorAll(".site-header details[open]");
  }
  document.addEventListener("click", function (event) {
    menus().forEach(function (menu) {
      if (!menu.contains(event.target)) { menu.removeAttribute("open"); }
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    menus().forEach(function (menu) {
      menu.removeAttribute("open");
      var summary = menu.querySelector("summary");
      if (summary && menu.contains(document.activeElement)) { summary.focus(); }
    });
  });
})();

/* data-swap-400 on an element: a 400 answer swapped into it (its own error message) is shown,
   not dropped as htmx drops 4xx answers. Here rather than in hx-on, which htmx would eval: the
   Content-Security-Policy allows no eval (#14). */
(function () {
  "use strict";
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.target;
    if (event.detail.xhr.status !== 400 || !target.closest || !target.closest("[data-swap-400]")) { return; }
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  });
  /* data-hold-while-open: an element that re-fetches itself does not while a <details> in it
     is open (an edit form the user is typing in). A trigger filter would need eval. */
  document.addEventListener("htmx:confirm", function (event) {
    var elt = event.detail.elt;
    if (elt && elt.hasAttribute && elt.hasAttribute("data-hold-while-open") &&
        elt.querySelector("details[open]")) {
      event.preventDefault();
    }
  });
})();
