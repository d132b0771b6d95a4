// The incident page's 72-hour countdown, refreshed every 30 seconds (the server renders the first value).
(function () {
  "use strict";
  const clock = document.getElementById("clock");
  const out = document.getElementById("countdown");
  if (!clock || !out) return;
  const deadline = new Date(clock.dataset.deadline);
  const english = document.documentElement.lang === "en";
  function render() {
    const left = deadline - new Date();
    if (left <= 0) {
      out.textContent = english ? "72-hour deadline passed" : "Délai de 72 heures dépassé";
      clock.classList.add("bad");
      return;
    }
    const hours = Math.floor(left / 3600000);
    const minutes = Math.floor((left % 3600000) / 60000);
    out.textContent = english ? `${hours} h ${minutes} min left` : `Reste ${hours} h ${minutes} min`;
  }
  render();
  setInterval(render, 30000);
})();

// Publishing notices to an insurer emails its members: the operator confirms first (forms with data-confirm).
(function () {
  "use strict";
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
})();
