// A copy button for a secret shown once (an API token). Without JavaScript the button stays hidden and one
// click on the text selects all of it (CSS user-select: all); when the clipboard is refused, the text is
// selected instead and the status says to press Ctrl+C.
(function () {
  "use strict";
  function select(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.dataset.copy);
    var status = document.getElementById("copy-status");
    if (!source) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = source.textContent.trim();
      function failed() {
        select(source);
        if (status) status.textContent = button.dataset.failed;
      }
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () {
          if (status) status.textContent = button.dataset.done;
        }, failed);
      } else {
        failed();
      }
    });
  });
})();
