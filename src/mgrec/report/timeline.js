// Zoom and pan for the per-video timelines of the mgrec report; no library.
//
// Each <svg class="timeline"> draws its bars in seconds, one lane per unit of height: the viewBox
// is "start 0 width rows" (rows: data-rows, the ground-truth lanes and then the detection lanes)
// with preserveAspectRatio="none", so zooming is only a change of the viewBox. The time axis below it
// (<svg class="axis">) is redrawn in pixels after every change, because text inside the stretched
// timeline would be distorted. Mouse wheel: zoom around the pointer; drag: pan; double-click: reset.
(function () {
  "use strict";
  var MIN_VIEW_SECONDS = 0.5;

  function clamp(value, low, high) {
    return Math.min(Math.max(value, low), high);
  }

  function formatTime(seconds, step) {
    if (step >= 60 || seconds >= 600) {
      var minutes = Math.floor(seconds / 60);
      var rest = seconds - 60 * minutes;
      var shown = step < 1 ? rest.toFixed(1) : Math.round(rest).toString();
      return minutes + ":" + (rest < 10 ? "0" : "") + shown;
    }
    return (step < 1 ? seconds.toFixed(1) : Math.round(seconds).toString()) + " s";
  }

  // A 1-2-5 step that gives about one tick per 90 pixels.
  function tickStep(viewSeconds, pixels) {
    var raw = viewSeconds / Math.max(1, pixels / 90);
    var power = Math.pow(10, Math.floor(Math.log10(raw)));
    var multiples = [1, 2, 5, 10];
    for (var i = 0; i < multiples.length; i++) {
      if (multiples[i] * power >= raw) return multiples[i] * power;
    }
    return 10 * power;
  }

  // `pixels`: the axis's width where the caller measured it (see drawAll), else measured here
  function drawAxis(axis, start, width, pixels) {
    pixels = pixels || axis.getBoundingClientRect().width || 800;
    while (axis.firstChild) axis.removeChild(axis.firstChild);
    var step = tickStep(width, pixels);
    var namespace = axis.namespaceURI;
    for (var t = Math.ceil(start / step) * step; t <= start + width + 1e-9; t += step) {
      var x = ((t - start) / width) * pixels;
      var line = document.createElementNS(namespace, "line");
      line.setAttribute("class", "tick");
      line.setAttribute("x1", x);
      line.setAttribute("x2", x);
      line.setAttribute("y1", 0);
      line.setAttribute("y2", 5);
      axis.appendChild(line);
      var label = document.createElementNS(namespace, "text");
      label.setAttribute("x", x);
      label.setAttribute("y", 16);
      label.setAttribute("text-anchor", x < 20 ? "start" : x > pixels - 20 ? "end" : "middle");
      label.textContent = formatTime(t, step);
      axis.appendChild(label);
    }
  }

  function setUp(svg) {
    var full = parseFloat(svg.getAttribute("data-duration"));
    var rows = parseFloat(svg.getAttribute("data-rows")) || 2;
    var axis = svg.parentNode.parentNode.querySelector("svg.axis");
    var view = { start: 0, width: full };
    var drag = null;

    function apply(pixels) {
      svg.setAttribute("viewBox", view.start + " 0 " + view.width + " " + rows);
      drawAxis(axis, view.start, view.width, pixels);
    }

    svg.addEventListener("wheel", function (event) {
      event.preventDefault();
      var box = svg.getBoundingClientRect();
      var fraction = clamp((event.clientX - box.left) / box.width, 0, 1);
      var pointer = view.start + fraction * view.width;
      var width = clamp(view.width * (event.deltaY < 0 ? 0.8 : 1.25), Math.min(MIN_VIEW_SECONDS, full), full);
      view.start = clamp(pointer - fraction * width, 0, full - width);
      view.width = width;
      apply();
    }, { passive: false });

    svg.addEventListener("pointerdown", function (event) {
      drag = { x: event.clientX, start: view.start };
      svg.setPointerCapture(event.pointerId);
      svg.classList.add("dragging");
    });
    svg.addEventListener("pointermove", function (event) {
      if (!drag) return;
      var seconds = ((event.clientX - drag.x) / svg.getBoundingClientRect().width) * view.width;
      view.start = clamp(drag.start - seconds, 0, full - view.width);
      apply();
    });
    function endDrag() {
      drag = null;
      svg.classList.remove("dragging");
    }
    svg.addEventListener("pointerup", endDrag);
    svg.addEventListener("pointercancel", endDrag);
    svg.addEventListener("dblclick", function () {
      view = { start: 0, width: full };
      apply();
    });
    return { svg: svg, axis: axis, draw: apply };
  }

  // Every axis is measured first and drawn after: a width read after an axis was drawn makes the browser lay the
  // page out again, and a page of 5000 videos took 42 s to set up (and as long after each resize), not 11.
  function drawAll(timelines) {
    var widths = timelines.map(function (timeline) { return timeline.axis.getBoundingClientRect().width; });
    timelines.forEach(function (timeline, i) { timeline.draw(widths[i]); });
  }

  var timelines = Array.prototype.slice.call(document.querySelectorAll("svg.timeline")).map(setUp);
  drawAll(timelines);
  timelines.forEach(function (timeline) { timeline.svg.setAttribute("data-ready", "1"); });
  window.addEventListener("resize", function () { drawAll(timelines); });
  document.documentElement.setAttribute("data-timelines-ready", String(timelines.length));
})();
