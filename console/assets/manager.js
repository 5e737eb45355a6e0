// The manager's alerts page: the event stream (GET /console/events, Server-Sent Events) puts each
// new notification at the top of the list as it is written, and a payout alert refreshes the
// month's totals (htmx, from /console/alerts/totals). EventSource reconnects by itself, with the
// last event's id, so nothing is missed across a dropped connection.
(function () {
  var state = document.getElementById("live-state");
  var list = document.getElementById("alerts");
  if (!state || !list || !window.EventSource) return;
  var source = new EventSource(state.getAttribute("data-events"));
  // The page says whether it is live: data-open while the stream is connected.
  source.addEventListener("open", function () { state.setAttribute("data-open", ""); });
  source.addEventListener("error", function () { state.removeAttribute("data-open"); });
  source.addEventListener("notification", function (ev) {
    var n;
    try { n = JSON.parse(ev.data); } catch (e) { return; }
    if (document.getElementById("alert-" + n.id)) return; // replayed after a reconnection
    var empty = document.getElementById("no-alerts");
    if (empty) empty.remove();
    var li = document.createElement("li");
    li.id = "alert-" + n.id;
    li.className = "alert unread fresh k-" + n.kind;
    var title = document.createElement("strong");
    title.textContent = n.title;
    li.appendChild(title);
    li.appendChild(document.createElement("br"));
    li.appendChild(document.createTextNode(n.body));
    list.insertBefore(li, list.firstChild);
    if (n.kind === "claim_paid" && window.htmx) {
      htmx.ajax("GET", state.getAttribute("data-totals"), { target: "#totals", swap: "outerHTML" });
    }
  });
  window.addEventListener("pagehide", function () { source.close(); });
})();
