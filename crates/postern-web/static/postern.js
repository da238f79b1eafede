// Postern's one script: it only enhances the "check your email" page, which
// works without it. Same origin, no inline code (CSP script-src 'self').
(function () {
  "use strict";

  // "Send again" after a short countdown; without this script the button is
  // simply available.
  var resend = document.querySelector("[data-resend-wait]");
  if (resend) {
    var left = parseInt(resend.getAttribute("data-resend-wait"), 10) || 0;
    var label = resend.textContent;
    var countdown = resend.getAttribute("data-countdown") || label;
    var tick = function () {
      if (left <= 0) {
        resend.disabled = false;
        resend.textContent = label;
        return;
      }
      resend.disabled = true;
      resend.textContent = countdown.replace("{s}", String(left));
      left -= 1;
      window.setTimeout(tick, 1000);
    };
    tick();
  }

  // device_policy = remote: wait for the other device, then reload, which
  // continues the sign-in (or shows why it cannot).
  var remote = document.querySelector("[data-status-url]");
  if (remote && window.fetch) {
    var url = remote.getAttribute("data-status-url");
    var poll = function () {
      window
        .fetch(url, {
          headers: { accept: "application/json" },
          credentials: "same-origin",
          cache: "no-store",
        })
        .then(function (res) {
          return res.ok ? res.json() : { status: "dead" };
        })
        .then(function (body) {
          if (body.status === "pending") {
            window.setTimeout(poll, 2000);
          } else {
            window.location.reload();
          }
        })
        .catch(function () {
          window.setTimeout(poll, 5000);
        });
    };
    window.setTimeout(poll, 2000);
  }
})();
