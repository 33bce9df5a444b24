// Follows a build's log over Server-Sent Events: each line is appended as
// text (never as HTML), the view keeps to the end while "Follow the end" is
// on, and when the build ends the page reloads to show its final details.
// EventSource reconnects by itself with Last-Event-ID, so nothing is lost.
(function () {
  "use strict";
  var pre = document.getElementById("build-log");
  if (!pre) return;
  var follow = document.getElementById("follow-log");
  var state = document.getElementById("log-state");
  var wasActive = pre.hasAttribute("data-active");
  var source = new EventSource(pre.getAttribute("data-log-url"));
  var pending = [];
  var scheduled = false;

  function flush() {
    scheduled = false;
    if (pending.length === 0) return;
    pre.appendChild(document.createTextNode(pending.join("")));
    pending = [];
    if (!follow || follow.checked) pre.scrollTop = pre.scrollHeight;
  }

  source.onmessage = function (e) {
    pending.push(e.data + "\n");
    if (!scheduled) {
      scheduled = true;
      window.requestAnimationFrame(flush);
    }
  };
  source.addEventListener("done", function (e) {
    source.close();
    flush();
    var status = "";
    try { status = JSON.parse(e.data).status; } catch (err) { status = ""; }
    if (state) state.textContent = "The build has ended" + (status ? ": " + status + "." : ".");
    if (wasActive) window.setTimeout(function () { window.location.reload(); }, 600);
  });
  source.onerror = function () {
    if (!state) return;
    // CLOSED: the server refused the stream (such as 429, too many viewers)
    // and EventSource will not try again by itself.
    state.textContent = source.readyState === EventSource.CLOSED
      ? "The live log could not be opened (it may have too many viewers now); reload the page to try again."
      : "Reconnecting to the log…";
  };
  source.onopen = function () {
    if (state) state.textContent = wasActive ? "Following the build live." : "";
  };
})();
