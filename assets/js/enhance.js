// What only works with JavaScript is shown only with it, and htmx's answers are announced where
// the eye and the keyboard go next.
(function () {
  function reveal(root) {
    root.querySelectorAll("[data-with-script]").forEach(function (element) {
      element.hidden = false;
    });
  }
  // The grant grid: tick or untick all APIs of a school, or one API for all schools (all of
  // them when some are unticked, else none); and find a school among many.
  function toggle(boxes) {
    var some = boxes.some(function (box) { return !box.checked; });
    boxes.forEach(function (box) { box.checked = some; });
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-check-row], [data-check-column]");
    if (!button) return;
    var table = button.closest("table");
    var boxes = button.hasAttribute("data-check-row")
      ? button.closest("tr").querySelectorAll("input[type=checkbox]")
      : table.querySelectorAll("input[data-api='" + button.dataset.checkColumn + "']");
    toggle(Array.prototype.slice.call(boxes));
  });
  document.addEventListener("input", function (event) {
    var field = event.target.closest("[data-filter-rows]");
    if (!field) return;
    var wanted = field.value.trim().toLowerCase();
    document.querySelectorAll(field.dataset.filterRows + " > tr").forEach(function (row) {
      row.hidden = wanted !== "" && row.textContent.toLowerCase().indexOf(wanted) < 0;
    });
  });
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
