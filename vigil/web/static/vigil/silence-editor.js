// The silence editor: the end time only matters for "until a set time", and
// a silence that lasts until its alert resolves starts now.
(function () {
  "use strict";

  const form = document.querySelector(".silence-editor");
  if (!form) return;
  const ends = form.querySelector("[data-field=ends_at]");
  const starts = form.querySelector("[data-field=starts_at]");

  function update() {
    const chosen = form.querySelector("input[name=duration]:checked");
    const value = chosen ? chosen.value : "";
    ends.hidden = value !== "custom" && !ends.classList.contains("has-error");
    starts.hidden = value === "resolved" && !starts.classList.contains("has-error");
  }

  form.querySelectorAll("input[name=duration]").forEach(function (input) {
    input.addEventListener("change", update);
  });
  update();
})();
