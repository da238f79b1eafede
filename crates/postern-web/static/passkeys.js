// Postern passkeys (issue 15): the WebAuthn calls of /login, the offer after
// an email sign-in and /account. Same-origin, no inline script (the CSP
// stays strict). Every page works without it: the passkey parts stay hidden.
(function () {
  'use strict';

  var supported = !!(window.PublicKeyCredential && navigator.credentials &&
    window.fetch && window.URLSearchParams);

  function b64(buf) {
    var bytes = new Uint8Array(buf);
    var s = '';
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function unb64(s) {
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) s += '=';
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  // Drops nulls (WebIDL dictionaries refuse them for sequences and enums).
  function clean(v) {
    if (Array.isArray(v)) return v.map(clean);
    if (v && typeof v === 'object') {
      var o = {};
      Object.keys(v).forEach(function (k) {
        if (v[k] !== null && v[k] !== undefined) o[k] = clean(v[k]);
      });
      return o;
    }
    return v;
  }

  function creationOptions(options) {
    var pk = clean(options.publicKey);
    pk.challenge = unb64(pk.challenge);
    pk.user.id = unb64(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = unb64(c.id); });
    return { publicKey: pk };
  }

  function requestOptions(options) {
    var pk = clean(options.publicKey);
    pk.challenge = unb64(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = unb64(c.id); });
    return pk;
  }

  var TRANSPORTS = ['usb', 'nfc', 'ble', 'internal', 'hybrid'];

  function registration(c) {
    var r = c.response;
    var transports = (r.getTransports ? r.getTransports() : []).filter(function (t) {
      return TRANSPORTS.indexOf(t) >= 0;
    });
    return {
      id: c.id,
      rawId: b64(c.rawId),
      type: c.type,
      extensions: {},
      response: {
        attestationObject: b64(r.attestationObject),
        clientDataJSON: b64(r.clientDataJSON),
        transports: transports
      }
    };
  }

  function assertion(c) {
    var r = c.response;
    return {
      id: c.id,
      rawId: b64(c.rawId),
      type: c.type,
      extensions: {},
      response: {
        authenticatorData: b64(r.authenticatorData),
        clientDataJSON: b64(r.clientDataJSON),
        signature: b64(r.signature),
        userHandle: r.userHandle ? b64(r.userHandle) : null
      }
    };
  }

  function start(url, fields) {
    return fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Accept': 'application/json' },
      body: new URLSearchParams(fields)
    }).then(function (res) {
      if (!res.ok) throw new Error('start refused: ' + res.status);
      return res.json();
    });
  }

  // A page sends one answer: on /login the autofill and the button may
  // both get one from the authenticator, and a second submit would sign in
  // twice (the first POST has already reached the server when the second
  // navigation replaces it).
  function finish(box, started, credential) {
    if (box.getAttribute('data-passkey-sent')) return;
    box.setAttribute('data-passkey-sent', '1');
    var form = box.querySelector('[data-passkey-finish]');
    form.elements.challenge_id.value = started.challenge_id;
    form.elements.credential.value = JSON.stringify(credential);
    form.submit();
  }

  function failed(box, err) {
    if (err && err.name === 'AbortError') return;
    var p = box.querySelector('[data-passkey-error]');
    if (p) p.hidden = false;
  }

  // ---- /login: the button and the browser's autofill --------------------
  function signIn(box) {
    var login = document.querySelector('form[action="/login"]');
    if (!login) return;
    var fields = [];
    Array.prototype.forEach.call(login.elements, function (el) {
      if (el.type === 'hidden' && el.name) fields.push([el.name, el.value]);
    });
    var go = box.querySelector('[data-passkey-go]');
    var autofill = null;

    function run(mediation) {
      return start(box.getAttribute('data-start'), fields).then(function (started) {
        var req = { publicKey: requestOptions(started.options) };
        if (mediation) {
          autofill = new AbortController();
          req.mediation = 'conditional';
          req.signal = autofill.signal;
        }
        return navigator.credentials.get(req).then(function (c) {
          if (c) finish(box, started, assertion(c));
        });
      });
    }

    box.hidden = false;
    go.addEventListener('click', function () {
      if (box.getAttribute('data-passkey-sent')) return;
      if (autofill) autofill.abort();
      autofill = null;
      run(false).catch(function (e) { failed(box, e); });
    });
    if (PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
        if (ok) run(true).catch(function () {});
      });
    }
  }

  // ---- the offer and /account: make a passkey ---------------------------
  function create(box) {
    var form = box.querySelector('[data-passkey-finish]');
    var go = box.querySelector('[data-passkey-go]');
    box.hidden = false;
    go.addEventListener('click', function () {
      go.disabled = true;
      start(box.getAttribute('data-start'), [
        ['csrf_token', form.elements.csrf_token.value],
        ['from', box.getAttribute('data-from')]
      ]).then(function (started) {
        return navigator.credentials.create(creationOptions(started.options))
          .then(function (c) { finish(box, started, registration(c)); });
      }).catch(function (e) {
        go.disabled = false;
        failed(box, e);
      });
    });
  }

  // Remember (for the server's offer) that this browser has a platform
  // authenticator: fingerprint, face or screen lock.
  function noteCapable() {
    if (!supported || !PublicKeyCredential.isUserVerifyingPlatformAuthenticatorAvailable) return;
    PublicKeyCredential.isUserVerifyingPlatformAuthenticatorAvailable().then(function (ok) {
      var secure = location.protocol === 'https:' ? '; Secure' : '';
      document.cookie = 'postern_passkeys_ok=' + (ok ? '1' : '0') +
        '; Path=/; Max-Age=2592000; SameSite=Lax' + secure;
    });
  }

  function init() {
    noteCapable();
    var offer = document.querySelector('[data-passkey-offer]');
    if (!supported) {
      // The offer is no use here: go on with the sign-in.
      if (offer) location.replace(offer.getAttribute('data-next'));
      return;
    }
    var signin = document.querySelector('[data-passkey-signin]');
    if (signin) signIn(signin);
    Array.prototype.forEach.call(document.querySelectorAll('[data-passkey-create]'), create);
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
