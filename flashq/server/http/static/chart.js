// A small line chart on <canvas>: shared time axis, a left and a right value axis.
// No library: the dashboard must work on a machine without internet.
"use strict";

window.FlashChart = (function () {
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function fmt(v) {
    if (v >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (v >= 1e3) return (v / 1e3).toFixed(v >= 1e4 ? 0 : 1) + "k";
    return String(Math.round(v * 10) / 10);
  }

  function clock(ms, seconds) {
    return new Date(ms).toTimeString().slice(0, seconds ? 8 : 5);
  }

  // series: [{values: [..], color, axis: "left"|"right", fill: bool}], times: [ms]
  function draw(canvas, times, series) {
    const dpr = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 600;
    const height = canvas.clientHeight || 220;
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    const g = canvas.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, width, height);

    const pad = { l: 46, r: 46, t: 10, b: 24 };
    const w = width - pad.l - pad.r;
    const h = height - pad.t - pad.b;
    const maxOf = (axis) => niceMax(Math.max(0, ...series.filter((s) => s.axis === axis)
      .flatMap((s) => s.values)));
    const maxL = maxOf("left");
    const maxR = maxOf("right");

    g.font = "11px system-ui, sans-serif";
    g.strokeStyle = "#eceff4";
    g.fillStyle = "#8a93a3";
    g.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = pad.t + h - (h * i) / 4;
      g.beginPath();
      g.moveTo(pad.l, Math.round(y) + 0.5);
      g.lineTo(pad.l + w, Math.round(y) + 0.5);
      g.stroke();
      g.textAlign = "right";
      g.fillText(fmt((maxL * i) / 4), pad.l - 6, y + 4);
      g.textAlign = "left";
      g.fillText(fmt((maxR * i) / 4), pad.l + w + 6, y + 4);
    }

    const n = times.length;
    if (n < 2) {
      g.textAlign = "center";
      g.fillText("collecting samples…", pad.l + w / 2, pad.t + h / 2);
      return;
    }
    const t0 = times[0];
    const span = Math.max(1, times[n - 1] - t0);
    const x = (t) => pad.l + (w * (t - t0)) / span;

    g.textAlign = "center";
    const ticks = Math.min(6, n);
    for (let i = 0; i < ticks; i++) {
      const t = t0 + (span * i) / (ticks - 1);
      g.fillText(clock(t, span < 600000), Math.min(pad.l + w - 24, Math.max(pad.l + 24, x(t))), height - 6);
    }

    for (const s of series) {
      const max = s.axis === "left" ? maxL : maxR;
      const y = (v) => pad.t + h - (h * Math.max(0, v)) / max;
      g.beginPath();
      s.values.forEach((v, i) => (i ? g.lineTo(x(times[i]), y(v)) : g.moveTo(x(times[i]), y(v))));
      g.strokeStyle = s.color;
      g.lineWidth = 2;
      g.lineJoin = "round";
      g.stroke();
      if (s.fill) {
        g.lineTo(x(times[n - 1]), pad.t + h);
        g.lineTo(x(times[0]), pad.t + h);
        g.closePath();
        g.globalAlpha = 0.1;
        g.fillStyle = s.color;
        g.fill();
        g.globalAlpha = 1;
        g.fillStyle = "#8a93a3";
      }
    }
  }

  return { draw };
})();
