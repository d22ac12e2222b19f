// Progressive enhancement only: every action also works as a plain form without this file.
// Queue: j/k move between rows, x toggles the row's checkbox, o or Enter opens it,
// a approves and r rejects the current row (the same forms a mouse would submit).
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var selectAll = document.getElementById("select-all");
    if (selectAll) {
      selectAll.hidden = false;
      selectAll.addEventListener("change", function () {
        document.querySelectorAll("input.pick").forEach(function (box) { box.checked = selectAll.checked; });
      });
    }
    var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-notice]"));
    var detail = document.querySelector("[data-detail-actions]");
    if (!rows.length && !detail) { return; }
    var current = -1;
    function focusRow(i) {
      if (!rows.length) { return; }
      if (current >= 0) { rows[current].classList.remove("current"); }
      current = Math.max(0, Math.min(rows.length - 1, i));
      rows[current].classList.add("current");
      rows[current].scrollIntoView({ block: "nearest" });
    }
    function act(kind) {
      // On a detail page, press that page's button; on the queue, submit the bulk form for one row.
      if (detail) {
        var b = document.querySelector("[data-shortcut='" + kind + "']");
        if (b) { b.click(); }
        return;
      }
      if (current < 0) { return; }
      document.querySelectorAll("input.pick").forEach(function (box) { box.checked = false; });
      var box = rows[current].querySelector("input.pick");
      var button = document.querySelector("button[data-bulk='" + kind + "']");
      if (box && button) { box.checked = true; button.click(); }
    }
    document.addEventListener("keydown", function (e) {
      var t = e.target;
      if (e.ctrlKey || e.metaKey || e.altKey) { return; }
      if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) { return; }
      switch (e.key) {
        case "j": focusRow(current + 1); break;
        case "k": focusRow(current - 1); break;
        case "x": if (current >= 0) { var b = rows[current].querySelector("input.pick"); if (b) { b.checked = !b.checked; } } break;
        case "o": case "Enter": if (current >= 0) { var l = rows[current].querySelector("a.open"); if (l) { l.click(); } } break;
        case "a": act("approve"); break;
        case "r": act("reject"); break;
        default: return;
      }
      e.preventDefault();
    });
  });
})();
