// Warden dashboard: the little behaviour that plain HTML can't give.
// Loaded as a file (the Content-Security-Policy forbids inline script).
"use strict";

// A button with data-copy="ID" copies the text of element ID to the
// clipboard and says so.
document.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-copy]");
  if (!button) return;
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(function () {
    var label = button.textContent;
    button.textContent = "Copied";
    setTimeout(function () { button.textContent = label; }, 2000);
  });
});
