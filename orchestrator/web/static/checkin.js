// Check-in page: scan QR codes with the device camera (the browser's BarcodeDetector, else
// the vendored jsQR, loaded only when the camera starts) and post codes with fetch,
// announcing each result in the aria-live region.
// Without this script, or without camera support, the code field and search post normally.
(function () {
  "use strict";

  var form = document.getElementById("code-form");
  var status = document.getElementById("checkin-status");
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (!form || !status || !meta) {
    return;
  }
  var field = form.elements.namedItem("code");
  var scanner = document.getElementById("scanner");
  var video = document.getElementById("scanner-video");
  var startButton = document.getElementById("scanner-start");
  var stopButton = document.getElementById("scanner-stop");
  var unsupported = document.getElementById("scanner-unsupported");
  var busy = false;

  function announce(text, kind) {
    var notice = document.createElement("p");
    notice.className = "notice notice-" + kind;
    notice.textContent = text;
    status.replaceChildren(notice);
  }

  function kindOf(outcome) {
    if (outcome === "checked_in") {
      return "success";
    }
    return outcome === "already_checked_in" ? "info" : "error";
  }

  function submit(code) {
    if (busy || !code) {
      return Promise.resolve();
    }
    busy = true;
    var body = JSON.stringify({ code: code, session: form.elements.namedItem("session").value });
    return fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-CSRF-Token": meta.content
      },
      body: body
    })
      .then(function (response) {
        return response.json().then(function (data) {
          announce(data.message || data.detail || form.dataset.failed, kindOf(data.outcome));
        });
      })
      .catch(function () {
        announce(form.dataset.failed, "error");
      })
      .finally(function () {
        busy = false;
      });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var code = field.value.trim();
    field.value = "";
    field.focus();
    submit(code);
  });

  // The camera scanner: the browser's own BarcodeDetector where it reads QR codes (Chromium on
  // Android, macOS), else the vendored jsQR decoding canvas frames (Firefox, desktop Chromium).
  if (!scanner || !video || !navigator.mediaDevices ||
      typeof navigator.mediaDevices.getUserMedia !== "function") {
    return;
  }

  var decode = null; // function (video) -> Promise of the code's text, or "" when none
  var canvas = null;
  var stream = null;
  var timer = null;
  var last = "";
  var lastAt = 0;

  function nativeDecoder() {
    var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    return function () {
      return detector.detect(video).then(function (codes) {
        return codes.length ? (codes[0].rawValue || "") : "";
      });
    };
  }

  function jsqrDecoder() {
    canvas = document.createElement("canvas");
    var context = canvas.getContext("2d", { willReadFrequently: true });
    return function () {
      var width = video.videoWidth;
      var height = video.videoHeight;
      if (!width || !height || !context) {
        return Promise.resolve("");
      }
      // A smaller frame decodes faster and still holds a badge-sized code.
      var scale = Math.min(1, 640 / Math.max(width, height));
      canvas.width = Math.round(width * scale);
      canvas.height = Math.round(height * scale);
      context.drawImage(video, 0, 0, canvas.width, canvas.height);
      var image = context.getImageData(0, 0, canvas.width, canvas.height);
      var found = window.jsQR(image.data, image.width, image.height, { inversionAttempts: "dontInvert" });
      return Promise.resolve(found ? found.data : "");
    };
  }

  function loadJsqr() {
    if (window.jsQR) {
      return Promise.resolve();
    }
    return new Promise(function (resolve, reject) {
      var script = document.createElement("script");
      script.src = scanner.dataset.decoder;
      script.onload = function () { return window.jsQR ? resolve() : reject(new Error("jsQR")); };
      script.onerror = reject;
      document.head.appendChild(script);
    });
  }

  function chooseDecoder() {
    if (!("BarcodeDetector" in window)) {
      return loadJsqr().then(jsqrDecoder);
    }
    return window.BarcodeDetector.getSupportedFormats()
      .then(function (formats) {
        return formats.indexOf("qr_code") === -1 ? loadJsqr().then(jsqrDecoder) : nativeDecoder();
      })
      .catch(function () { return loadJsqr().then(jsqrDecoder); });
  }

  function scan() {
    if (!stream || busy || video.readyState < 2 || !decode) {
      return;
    }
    decode().then(function (text) {
      var value = (text || "").trim();
      var now = Date.now();
      // The same badge held in front of the camera is posted once, not every frame.
      if (value && (value !== last || now - lastAt > 5000)) {
        last = value;
        lastAt = now;
        submit(value);
      }
    }).catch(function () { /* a frame that could not be read; try the next */ });
  }

  function stop() {
    if (timer !== null) {
      window.clearInterval(timer);
      timer = null;
    }
    if (stream) {
      stream.getTracks().forEach(function (track) { track.stop(); });
      stream = null;
    }
    video.srcObject = null;
    video.hidden = true;
    stopButton.hidden = true;
    startButton.hidden = false;
  }

  function start() {
    var ready = decode ? Promise.resolve(decode) : chooseDecoder();
    ready
      .then(function (found) {
        decode = found;
        return navigator.mediaDevices.getUserMedia({
          video: { facingMode: { ideal: "environment" } },
          audio: false
        });
      })
      .then(function (media) {
        stream = media;
        video.srcObject = media;
        video.hidden = false;
        startButton.hidden = true;
        stopButton.hidden = false;
        stopButton.focus();
        return video.play();
      })
      .then(function () {
        timer = window.setInterval(scan, 250);
        announce(scanner.dataset.started, "info");
      })
      .catch(function () {
        stop();
        announce(scanner.dataset.denied, "error");
      });
  }

  // getUserMedia needs a secure page (HTTPS, or localhost); elsewhere keep the note.
  if (window.isSecureContext === false) {
    return;
  }
  scanner.hidden = false;
  unsupported.hidden = true;
  startButton.addEventListener("click", start);
  stopButton.addEventListener("click", function () {
    stop();
    startButton.focus();
  });
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      stop();
    }
  });
})();
