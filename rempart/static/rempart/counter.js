// Counter page helpers: input masks for NIR and dates, copy and print the check reference. No framework.
(function () {
  "use strict";
  function groups(digits, sizes) {
    var out = [], i = 0;
    sizes.forEach(function (n) { if (i < digits.length) { out.push(digits.slice(i, i + n)); i += n; } });
    return out;
  }
  document.querySelectorAll('input[data-mask="nir"]').forEach(function (input) {
    input.addEventListener("input", function () {
      var raw = input.value.toUpperCase().replace(/[^0-9AB]/g, "").slice(0, 15);
      input.value = groups(raw, [1, 2, 2, 2, 3, 3, 2]).join(" ");
    });
  });
  document.querySelectorAll('input[data-mask="date"]').forEach(function (input) {
    input.addEventListener("input", function () {
      var raw = input.value.replace(/[^0-9]/g, "").slice(0, 8);
      input.value = groups(raw, [2, 2, 4]).join("/");
    });
  });
  document.querySelectorAll(".js-copy").forEach(function (button) {
    button.addEventListener("click", function () {
      var text = document.getElementById(button.dataset.copy).textContent;
      if (navigator.clipboard) { navigator.clipboard.writeText(text); }
      button.textContent = "✓";
    });
  });
  document.querySelectorAll(".js-print").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });
})();
