// Postern's one script. Every page works without it; it adds local times,
// the "send again" countdown, tidy pasted codes, a "Back" button where a page
// has no other way on, and waiting for a remote approval. Same origin, no
// inline code (CSP script-src 'self').
(function () {
  "use strict";

  var lang = document.documentElement.getAttribute("lang") || undefined;

  // Times: the page says them in UTC; here they become the browser's local
  // time with a relative time ("3 minutes ago (14 Mar 2025, 10:05)",
  // "until 10:35 (in 12 minutes)").
  var relative = function (date) {
    if (!window.Intl || !Intl.RelativeTimeFormat) {
      return "";
    }
    var seconds = Math.round((date.getTime() - Date.now()) / 1000);
    var abs = Math.abs(seconds);
    var rtf = new Intl.RelativeTimeFormat(lang, { numeric: "auto" });
    if (abs < 60) {
      return rtf.format(0, "second");
    }
    if (abs < 3600) {
      return rtf.format(Math.round(seconds / 60), "minute");
    }
    if (abs < 86400) {
      return rtf.format(Math.round(seconds / 3600), "hour");
    }
    return rtf.format(Math.round(seconds / 86400), "day");
  };
  var times = document.querySelectorAll("time[data-time]");
  Array.prototype.forEach.call(times, function (el) {
    var date = new Date(el.getAttribute("datetime"));
    if (isNaN(date.getTime())) {
      return;
    }
    try {
      var kind = el.getAttribute("data-time");
      var rel = relative(date);
      if (kind === "clock") {
        // A time to come says how far off it is: "10:35 (in 12 minutes)".
        var clock = date.toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
        var ahead = date.getTime() - Date.now() > 60000;
        el.textContent = rel && ahead ? clock + " (" + rel + ")" : clock;
      } else {
        var full = date.toLocaleString(lang, { dateStyle: "medium", timeStyle: "short" });
        el.textContent = rel ? rel + " (" + full + ")" : full;
      }
      el.title = date.toISOString().replace(".000Z", "Z");
    } catch (e) {
      // An old browser keeps the UTC text.
    }
  });

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

  // A pasted or typed code keeps its digits: "123 456" and "123-456" become
  // "123456" (the server does the same).
  var code = document.querySelector("input[name=code]");
  if (code) {
    var tidy = function () {
      var clean = code.value.replace(/[\s\-\u2010\u2011\u2013\u2014.]/g, "");
      if (clean !== code.value) {
        code.value = clean;
      }
    };
    code.addEventListener("input", tidy);
    code.addEventListener("paste", function () {
      window.setTimeout(tidy, 0);
    });
  }

  // A field the server refused: focused, its text selected to type anew.
  var invalid = document.querySelector("input[aria-invalid=true]");
  if (invalid) {
    invalid.focus();
    if (invalid.name === "code") {
      invalid.select();
    } else {
      // The caret after what was typed, to fix its end (email fields have
      // no selection API).
      var typed = invalid.value;
      invalid.value = "";
      invalid.value = typed;
    }
  }

  // "Back" where a page has no other way on, when there is a page to go back to.
  var back = document.querySelector("[data-back]");
  if (back && window.history.length > 1) {
    back.hidden = false;
    back.addEventListener("click", function () {
      window.history.back();
    });
  }

  // device_policy = remote: wait for the other device, then open this
  // sign-in's page again, which continues it (or says why it cannot).
  var remote = document.querySelector("[data-status-url]");
  if (remote && window.fetch) {
    var url = remote.getAttribute("data-status-url");
    var next = remote.getAttribute("data-check-url");
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
          } else if (next) {
            window.location.assign(next);
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
