// The administration panel's one script (same origin, no inline code: CSP
// script-src 'self'). Every page works without it; it adds the live email
// preview on an app's page: the preview frame follows the branding form as
// it is edited, and the colour picker and the colour field stay in step.
(function () {
  "use strict";

  var form = document.getElementById("branding-form");
  var frame = document.getElementById("email-preview");
  if (!form || !frame) {
    return;
  }
  var base = form.getAttribute("data-preview");
  var field = function (name) {
    return form.querySelector("[name=" + name + "]");
  };
  var picker = document.getElementById("b-color-pick");
  var color = field("color");
  var hex = /^#[0-9a-fA-F]{6}$/;
  if (picker && color) {
    picker.hidden = false;
    picker.addEventListener("input", function () {
      color.value = picker.value;
      schedule();
    });
    color.addEventListener("input", function () {
      if (hex.test(color.value)) {
        picker.value = color.value.toLowerCase();
      }
    });
  }
  var timer = null;
  var update = function () {
    var q = [];
    ["brand_name", "color", "logo_url", "sender_name", "email_note", "preview_locale"].forEach(function (name) {
      var el = field(name);
      if (el) {
        q.push(encodeURIComponent(name) + "=" + encodeURIComponent(el.value));
      }
    });
    var url = base + "?" + q.join("&");
    if (frame.getAttribute("src") !== url) {
      frame.setAttribute("src", url);
    }
    var locale = field("preview_locale");
    var test = document.querySelector("form[action$='/test-email'] input[name=locale]");
    if (locale && test) {
      test.value = locale.value;
    }
  };
  var schedule = function () {
    if (timer) {
      window.clearTimeout(timer);
    }
    timer = window.setTimeout(update, 250);
  };
  form.addEventListener("input", schedule);
  form.addEventListener("change", schedule);
})();
