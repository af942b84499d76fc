// distq console: the only script of the pages (the CSP allows no other).
// It refreshes a running batch's live part without a full reload, and
// keeps a double click from sending a form twice. Every page works
// without it; the server renders and escapes everything it shows.
(function () {
  "use strict";

  // The batch's buttons apply only when something is queued or failed.
  function buttons(live) {
    var root = live.querySelector(".live-root");
    if (!root) { return; }
    var cancel = document.getElementById("cancel-queued");
    var retry = document.getElementById("retry-failed");
    if (cancel) { cancel.disabled = root.getAttribute("data-queued") === "0"; }
    if (retry) { retry.disabled = root.getAttribute("data-failed") === "0"; }
  }

  function refresh(live) {
    var src = live.getAttribute("data-src");
    var every = parseInt(live.getAttribute("data-poll"), 10) || 2000;
    function tick() {
      var root = live.querySelector(".live-root");
      if (root && root.getAttribute("data-done") === "true") {
        return;
      }
      fetch(src, { credentials: "same-origin", headers: { "X-Console-Live": "1" } })
        .then(function (r) {
          if (!r.ok) { throw new Error("status " + r.status); }
          return r.text();
        })
        .then(function (html) {
          // Keep the open/closed state of failure groups across refreshes.
          var closed = {};
          live.querySelectorAll("details.failure").forEach(function (d) {
            if (!d.open) { closed[d.querySelector(".code").textContent] = true; }
          });
          live.innerHTML = html;
          buttons(live);
          live.querySelectorAll("details.failure").forEach(function (d) {
            if (closed[d.querySelector(".code").textContent]) { d.open = false; }
          });
          setTimeout(tick, every);
        })
        .catch(function () { setTimeout(tick, every * 3); });
    }
    setTimeout(tick, every);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var live = document.getElementById("live");
    if (live) { refresh(live); }
    document.querySelectorAll("form.once").forEach(function (f) {
      f.addEventListener("submit", function (e) {
        if (f.getAttribute("data-sent")) { e.preventDefault(); return; }
        f.setAttribute("data-sent", "1");
        var b = f.querySelector("button[type=submit]");
        if (b) { b.setAttribute("aria-disabled", "true"); b.classList.add("sending"); b.textContent = "Submitting…"; }
      });
    });
  });
})();
