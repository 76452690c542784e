// Counts script errors on the page into <html data-js-errors="N">, so that a headless browser's
// DOM dump shows whether the report's scripts ran cleanly. Loaded first, in <head>.
(function () {
  "use strict";
  var root = document.documentElement;
  var count = 0;
  function record() {
    count += 1;
    root.setAttribute("data-js-errors", String(count));
  }
  window.addEventListener("error", record, true);
  window.addEventListener("unhandledrejection", record);
  var originalConsoleError = console.error;
  console.error = function () {
    record();
    return originalConsoleError.apply(console, arguments);
  };
})();
