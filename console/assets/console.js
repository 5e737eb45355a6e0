// The console's own script, small: everything else is plain forms and htmx attributes.
// The language form comes back to the page it was sent from.
document.querySelectorAll("input[data-here]").forEach(function (el) {
  el.value = location.pathname + location.search;
});
// After htmx swaps the main element, the notice of the command's outcome (or the page's heading)
// takes the focus, so that a keyboard or screen reader user is not left on a removed button.
document.body.addEventListener("htmx:afterSettle", function (ev) {
  var target = document.getElementById("notice") || document.querySelector("main h1");
  if (target) {
    if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
    target.focus();
  }
});
// A rejection needs a reason: the reason field is required only when reject is pressed.
document.body.addEventListener("click", function (ev) {
  var b = ev.target.closest("button[data-needs-reason]");
  if (!b) return;
  var note = b.form && b.form.querySelector("textarea[name=note]");
  if (note) note.required = b.value === "rejected";
});
