// Check-in page: scan QR codes with the device camera (BarcodeDetector, e.g. Chromium on
// Android) and post codes with fetch, announcing each result in the aria-live region.
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

  // The camera scanner: only where the browser can read QR codes itself (no libraries).
  if (!scanner || !video || !("BarcodeDetector" in window) || !navigator.mediaDevices ||
      typeof navigator.mediaDevices.getUserMedia !== "function") {
    return;
  }

  var detector = null;
  var stream = null;
  var timer = null;
  var last = "";
  var lastAt = 0;

  function scan() {
    if (!stream || busy || video.readyState < 2) {
      return;
    }
    detector.detect(video).then(function (codes) {
      var now = Date.now();
      for (var i = 0; i < codes.length; i += 1) {
        var value = (codes[i].rawValue || "").trim();
        // The same badge held in front of the camera is posted once, not every frame.
        if (value && (value !== last || now - lastAt > 5000)) {
          last = value;
          lastAt = now;
          submit(value);
          return;
        }
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
    navigator.mediaDevices.getUserMedia({ video: { facingMode: { ideal: "environment" } }, audio: false })
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
        timer = window.setInterval(scan, 300);
        announce(scanner.dataset.started, "info");
      })
      .catch(function () {
        stop();
        announce(scanner.dataset.denied, "error");
      });
  }

  window.BarcodeDetector.getSupportedFormats().then(function (formats) {
    if (formats.indexOf("qr_code") === -1) {
      return;
    }
    detector = new window.BarcodeDetector({ formats: ["qr_code"] });
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
  }).catch(function () { /* keep the "not supported" note */ });
})();
