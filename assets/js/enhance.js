// What only works with JavaScript is shown only with it, and htmx's answers are announced where
// the eye and the keyboard go next.
(function () {
  function reveal(root) {
    root.querySelectorAll("[data-with-script]").forEach(function (element) {
      element.hidden = false;
    });
  }
  document.addEventListener("DOMContentLoaded", function () { reveal(document); });
  document.addEventListener("htmx:afterSwap", function (event) {
    reveal(event.target);
    // A form sent back with errors: focus its summary, as a page load would show it first.
    var summary = event.target.matches(".error-summary")
      ? event.target
      : event.target.querySelector(".error-summary");
    if (summary) summary.focus();
  });
})();
