// Weir dashboard: live updates without reloading.
//
// Any element with data-live="/some/path" is refreshed every data-every
// milliseconds (default 2000): the script fetches the path with the header
// X-Weir-Live: 1 (same origin, with the session cookie), and the server
// answers the page's "live" fragment, which replaces the element's content.
// A 401 means the session ended: the page reloads, which leads to sign-in.
// Polling pauses while the tab is hidden. No other script runs on the pages.
(function () {
  "use strict";
  function poll(el) {
    var every = parseInt(el.getAttribute("data-every"), 10) || 2000;
    var busy = false;
    function tick() {
      if (busy || document.hidden) { return; }
      busy = true;
      fetch(el.getAttribute("data-live"), {
        headers: { "X-Weir-Live": "1" },
        credentials: "same-origin",
        cache: "no-store"
      }).then(function (r) {
        if (r.status === 401) { window.location.reload(); return null; }
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.text();
      }).then(function (html) {
        if (html !== null) {
          el.innerHTML = html;
          el.removeAttribute("data-stale");
          el.setAttribute("data-updated", new Date().toISOString());
        }
      }).catch(function () {
        el.setAttribute("data-stale", "true");
      }).finally(function () { busy = false; });
    }
    window.setInterval(tick, every);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live]").forEach(poll);
  });
})();
