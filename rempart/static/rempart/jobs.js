// Live progress of a background job: polls its state every second until it is finished, then shows the
// result link or the reason it failed. Without JavaScript the page shows the state it was served with.
(function () {
  "use strict";
  var box = document.getElementById("job");
  if (!box || box.dataset.finished === "1") return;
  var url = box.dataset.stateUrl;
  var bar = document.getElementById("job-progress");
  var status = document.getElementById("job-status");
  var count = document.getElementById("job-count");
  var failure = document.getElementById("job-failure");
  var result = document.getElementById("job-result");
  var link = document.getElementById("job-result-link");
  var lang = document.documentElement.lang === "en" ? "en" : "fr";
  var of = lang === "en" ? " of " : " sur ";
  var delay = 1000;
  function show(state) {
    status.textContent = state.status_label;
    if (state.percent === null) { bar.removeAttribute("value"); } else { bar.value = state.percent; }
    var text = "";
    if (state.total) { text = state.done.toLocaleString(lang) + of + state.total.toLocaleString(lang); }
    else if (state.done) { text = state.done.toLocaleString(lang); }
    count.textContent = (text + " " + (state.note || "")).trim();
    if (state.failure_message) {
      failure.textContent = state.failure_message + (state.failure_code ? " (" + state.failure_code + ")" : "");
      failure.hidden = false;
    }
    if (state.result_url) { link.href = state.result_url; result.hidden = false; }
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      })
      .then(function (state) {
        if (state.finished && state.follow && state.result_url) {
          window.location.assign(state.result_url);
          return;
        }
        show(state);
        delay = 1000;
        if (!state.finished) setTimeout(poll, delay);
      })
      .catch(function () {
        delay = Math.min(delay * 2, 15000);  // the server restarting: slower polls, never a storm
        setTimeout(poll, delay);
      });
  }
  setTimeout(poll, 500);
})();
