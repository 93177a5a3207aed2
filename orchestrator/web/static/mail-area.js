// Invitations and mail: the progress of an invitation run, live over server-sent events.
// Without JavaScript (or EventSource) the page shows the figures as loaded and a reload link.
(function () {
  "use strict";
  var box = document.getElementById("invite-progress");
  if (!box || !window.EventSource) {
    return;
  }
  var bar = box.querySelector("progress");
  var detail = box.querySelector(".progress-detail");
  var state = box.querySelector(".progress-state");
  var reload = box.querySelector(".reload-link");
  var source = new EventSource(box.getAttribute("data-stream"));
  // Opened while a run was going: the rest of the page (who is still to invite, the outbox)
  // shows the figures of that moment; offer the reload again once the run is done.
  var openedRunning = state.textContent.trim() === state.getAttribute("data-running");
  if (reload) {
    reload.hidden = true;
  }

  function show(data) {
    bar.max = data.total || 1;
    bar.value = data.done;
    bar.textContent = data.done + " / " + data.total;
    detail.textContent = detail.textContent.replace(/\d+(\D+)\d+/, data.done + "$1" + data.total);
    ["waiting", "sent", "failed"].forEach(function (key) {
      var figure = box.querySelector('[data-count="' + key + '"]');
      if (figure) {
        figure.textContent = String(data[key]);
      }
    });
    var text = state.getAttribute(data.finished ? "data-finished" : "data-running");
    if (state.textContent.trim() !== text) {
      state.textContent = text;
    }
  }

  source.addEventListener("progress", function (event) {
    show(JSON.parse(event.data));
  });
  source.addEventListener("done", function (event) {
    show(JSON.parse(event.data));
    source.close();
    if (reload && openedRunning) {
      reload.hidden = false;
    }
  });
})();
