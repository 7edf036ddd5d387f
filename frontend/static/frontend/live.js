// Live updates: one websocket per page. Events carry a type and ids; the page re-renders its htmx partials by
// firing "live:<prefix>" on <body> (release.changed -> live:fleet, and live:release on that release's page;
// pipeline.stage -> live:pipeline, ...). While the socket is down, window.rollgateLive is false and the partials
// poll slowly instead: every 30 s this script fires "live:poll" (hx-trigger "live:poll from:body"; a trigger filter
// like "[!window.rollgateLive]" would need eval, which the Content-Security-Policy forbids). After a reconnect
// everything refreshes once, since events may have been missed meanwhile.
(function () {
  const status = () => document.getElementById("live-status");
  const pageRelease = () => { const el = document.querySelector("[data-release-id]"); return el ? el.dataset.releaseId : null; };
  let delay = 500, everConnected = false;
  window.rollgateLive = false;

  function fire(name) { htmx.trigger(document.body, "live:" + name); }

  function dispatch(event) {
    // An event can reach us twice (through "fleet" and "release.<id>"); the partials' hx-trigger "delay:" folds
    // the two triggers into one request. Events carry no id, so two real changes can look identical: never drop.
    window.rollgateLastEvent = event;
    document.body.dispatchEvent(new CustomEvent("rollgate:event", {detail: event}));
    if (!event.type || event.type === "hello" || event.type === "subscribed" || event.type === "error") return;
    const prefix = event.type.split(".")[0];
    if (prefix === "release" || prefix === "service" || prefix === "environment") fire("fleet");
    if (prefix === "environment") fire("environment");
    if (prefix === "release") {
      if (String(event.release_id) === pageRelease()) fire("release");
    } else if (prefix !== "service") {
      fire(prefix);
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws/live/`);
    socket.onopen = () => {
      delay = 500;
      window.rollgateLive = true;
      const el = status(); if (el) { el.classList.add("on"); el.title = "live"; }
      const release = pageRelease();
      if (release) socket.send(JSON.stringify({subscribe: `release.${release}`}));
      // pages that show other event streams ask for them (the audit log: data-live-subscribe="audit")
      document.querySelectorAll("[data-live-subscribe]").forEach((el) =>
        socket.send(JSON.stringify({subscribe: el.dataset.liveSubscribe})));
      if (everConnected) ["fleet", "release", "audit", "environment"].forEach(fire);
      everConnected = true;
    };
    socket.onmessage = (message) => {
      let event;
      try { event = JSON.parse(message.data); } catch (e) { return; }
      dispatch(event);
    };
    socket.onclose = (event) => {
      window.rollgateLive = false;
      const el = status(); if (el) { el.classList.remove("on"); el.title = "live updates off: polling every 30 s"; }
      if (event.code === 4401 || event.code === 4403) return;  // not logged in / no role: polling only
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  }
  document.addEventListener("DOMContentLoaded", () => { if (status()) connect(); });
  setInterval(() => { if (!window.rollgateLive) htmx.trigger(document.body, "live:poll"); }, 30000);
})();

// Forms that ask before they post (cut-over, switch-back, rollback to a revision): data-confirm="question".
// An event listener rather than onsubmit="...": the Content-Security-Policy allows no inline script.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});
