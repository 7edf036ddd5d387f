// Live updates: one websocket per page. Events carry a type and ids; the page re-renders its htmx partials.
// When the socket drops we reconnect with backoff; the partials also poll slowly (hx-trigger "every 30s").
(function () {
  const status = () => document.getElementById("live-status");
  let delay = 500;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws/live/`);
    socket.onopen = () => {
      delay = 500;
      const el = status(); if (el) { el.classList.add("on"); el.title = "live"; }
      const release = document.querySelector("[data-release-id]");
      if (release) socket.send(JSON.stringify({subscribe: `release.${release.dataset.releaseId}`}));
    };
    socket.onmessage = (message) => {
      const event = JSON.parse(message.data);
      window.rollgateLastEvent = event;
      document.body.dispatchEvent(new CustomEvent("rollgate:event", {detail: event}));
      if (event.type === "release.changed" || event.type === "service.changed" || event.type === "environment.changed") {
        htmx.trigger(document.body, "live:fleet");
        const release = document.querySelector("[data-release-id]");
        if (release && String(event.release_id) === release.dataset.releaseId) htmx.trigger(document.body, "live:release");
      } else if (event.type && event.type !== "hello" && event.type !== "subscribed") {
        htmx.trigger(document.body, "live:" + event.type.split(".")[0]);
      }
    };
    socket.onclose = (event) => {
      const el = status(); if (el) { el.classList.remove("on"); el.title = "reconnecting"; }
      if (event.code === 4401 || event.code === 4403) return;  // not logged in / no role: polling only
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  }
  document.addEventListener("DOMContentLoaded", () => { if (status()) connect(); });
})();
