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

// <input type="file" data-load-into="ID" data-name-into="ID2"> reads the
// chosen file into the textarea ID (and its name into the input ID2), so a
// candidate can be loaded instead of pasted. Without JavaScript, pasting
// works the same.
document.addEventListener("change", function (event) {
  var input = event.target;
  if (!input.matches || !input.matches("input[type=file][data-load-into]") || !input.files.length) return;
  var file = input.files[0];
  var target = document.getElementById(input.getAttribute("data-load-into"));
  var nameTarget = document.getElementById(input.getAttribute("data-name-into"));
  file.text().then(function (text) {
    if (target) target.value = text;
    if (nameTarget && !nameTarget.value) nameTarget.value = file.name;
  });
});
