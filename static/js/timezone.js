// Fill hidden time zone fields (sign-up) with the browser's own IANA zone, e.g. "Europe/Paris".
// The server checks the name against zoneinfo and falls back to UTC.
(function () {
  "use strict";
  function fill() {
    var name = "";
    try {
      name = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (error) {
      name = "";
    }
    if (!name) return;
    document.querySelectorAll("input[data-browser-time-zone]").forEach(function (input) {
      if (!input.value) input.value = name;
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", fill);
  } else {
    fill();
  }
})();
