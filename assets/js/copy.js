// Copy buttons: <button data-copy="#selector" hidden>. Without JavaScript the button stays
// hidden and the code remains selectable text.
(function () {
  function init(root) {
    root.querySelectorAll("button[data-copy]").forEach(function (button) {
      if (!navigator.clipboard) return;
      button.hidden = false;
      button.addEventListener("click", function () {
        var source = document.querySelector(button.dataset.copy);
        if (!source) return;
        navigator.clipboard.writeText(source.textContent.trim()).then(function () {
          var note = button.parentElement.querySelector(".copied");
          if (note) note.hidden = false;
        });
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSwap", function (event) { init(event.target); });
})();
