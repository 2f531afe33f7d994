// The report's script: tooltips and zoom/pan on the machine drawing, the
// timeline drawn on a canvas with zoom and pan, and the status line that
// says what was drawn. It reads everything from the JSON block
// #report-data and fetches nothing.
(function () {
  'use strict';

  var DATA = JSON.parse(document.getElementById('report-data').textContent);
  var tip = document.getElementById('tooltip');

  // ---- formatting -------------------------------------------------------

  /** Picoseconds in the largest unit that keeps a whole part. */
  function fmtPs(ps) {
    var a = Math.abs(ps);
    if (a >= 1e9) return (ps / 1e9).toFixed(3) + ' ms';
    if (a >= 1e6) return (ps / 1e6).toFixed(3) + ' us';
    if (a >= 1e3) return (ps / 1e3).toFixed(3) + ' ns';
    return Math.round(ps) + ' ps';
  }

  /** A tick label: `v` ps in the unit of the tick step, with only the decimals the step needs. */
  function fmtTick(v, step) {
    var units = [[1e9, 'ms'], [1e6, 'us'], [1e3, 'ns'], [1, 'ps']];
    var u = units[units.length - 1];
    for (var i = 0; i < units.length; i++) {
      if (step >= units[i][0]) { u = units[i]; break; }
    }
    var q = step / u[0];
    var dec = q >= 1 ? 0 : Math.min(6, Math.ceil(-Math.log10(q) - 1e-9));
    return (v / u[0]).toFixed(dec) + ' ' + u[1];
  }

  /** Bytes with a binary unit, and the exact count. */
  function fmtBytes(b) {
    var units = [['GiB', 1073741824], ['MiB', 1048576], ['KiB', 1024]];
    for (var i = 0; i < units.length; i++) {
      if (b >= units[i][1]) {
        return (b / units[i][1]).toFixed(2) + ' ' + units[i][0] + ' (' + b + ' B)';
      }
    }
    return b + ' B';
  }

  function pct(x) {
    return (x * 100).toFixed(1) + '%';
  }

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }

  // ---- tooltip ----------------------------------------------------------

  function showTip(html, ev) {
    tip.innerHTML = html;
    tip.hidden = false;
    var pad = 14;
    var w = tip.offsetWidth;
    var h = tip.offsetHeight;
    var x = ev.clientX + pad;
    var y = ev.clientY + pad;
    if (x + w > window.innerWidth - 4) x = Math.max(4, ev.clientX - pad - w);
    if (y + h > window.innerHeight - 4) y = Math.max(4, ev.clientY - pad - h);
    tip.style.left = x + 'px';
    tip.style.top = y + 'px';
  }

  function hideTip() {
    tip.hidden = true;
  }

  function row(k, v) {
    return '<tr><th>' + esc(k) + '</th><td>' + esc(v) + '</td></tr>';
  }

  // ---- the machine ------------------------------------------------------

  var ENGINES = ['PE_CPU', 'DMA_IN', 'GEMM', 'MATH', 'DMA_WB', 'COMM'];

  function peTip(p) {
    var t = Math.max(1, p.end - p.start);
    var h = row('kernel time', fmtPs(p.end - p.start));
    for (var i = 0; i < ENGINES.length; i++) {
      if (p.busy[i] > 0) h += row(ENGINES[i], fmtPs(p.busy[i]) + ' busy (' + pct(p.busy[i] / t) + ')');
    }
    h += row('HBM', fmtBytes(p.hbm) + (p.served > 0 ? ' (' + fmtBytes(p.served) + ' for other PEs)' : ''));
    if (p.remote_read + p.remote_write > 0) {
      h += row('remote', fmtBytes(p.remote_read) + ' read, ' + fmtBytes(p.remote_write) + ' written');
    }
    h += row('bound', fmtPs(p.bound * 1000) + ' (' + p.bound_by + ')');
    h += row('sent', fmtBytes(p.sent));
    h += row('received', fmtBytes(p.received));
    if (p.flops > 0) h += row('FLOP', String(p.flops));
    return h;
  }

  function initMachine() {
    var M = DATA.machine;
    var svg = document.getElementById('machine-svg');
    var box = document.getElementById('machine-box');
    var strokes = svg.querySelectorAll('line.link');
    if (strokes.length !== M.links.length) {
      throw new Error('machine: ' + strokes.length + ' link strokes drawn but ' + M.links.length + ' in the data');
    }
    var vb = svg.getAttribute('viewBox').split(/[\s,]+/).map(Number);
    var full = { x: vb[0], y: vb[1], w: vb[2], h: vb[3] };
    var view = { x: full.x, y: full.y, w: full.w, h: full.h };

    function apply() {
      svg.setAttribute('viewBox', view.x + ' ' + view.y + ' ' + view.w + ' ' + view.h);
    }
    // Drawing units per screen pixel (the drawing keeps its aspect ratio).
    function unitsPerPx() {
      var r = svg.getBoundingClientRect();
      return Math.max(view.w / Math.max(1, r.width), view.h / Math.max(1, r.height));
    }
    // The drawing point under a client position.
    function at(clientX, clientY) {
      var r = svg.getBoundingClientRect();
      var k = unitsPerPx();
      var cx = view.x + view.w / 2 + (clientX - (r.left + r.width / 2)) * k;
      var cy = view.y + view.h / 2 + (clientY - (r.top + r.height / 2)) * k;
      return [cx, cy];
    }
    function zoom(f, cx, cy) {
      var w = view.w * f;
      if (w < full.w / 400 || w > full.w * 4) return;
      view.x = cx - (cx - view.x) * f;
      view.y = cy - (cy - view.y) * f;
      view.w = w;
      view.h = view.h * f;
      apply();
    }
    function centre() {
      return [view.x + view.w / 2, view.y + view.h / 2];
    }
    box.addEventListener('wheel', function (e) {
      e.preventDefault();
      var p = at(e.clientX, e.clientY);
      zoom(e.deltaY > 0 ? 1.25 : 0.8, p[0], p[1]);
    }, { passive: false });
    var drag = null;
    box.addEventListener('mousedown', function (e) {
      if (e.button !== 0) return;
      drag = { x: e.clientX, y: e.clientY, vx: view.x, vy: view.y, k: unitsPerPx() };
      box.classList.add('dragging');
      e.preventDefault();
    });
    window.addEventListener('mousemove', function (e) {
      if (!drag) return;
      view.x = drag.vx - (e.clientX - drag.x) * drag.k;
      view.y = drag.vy - (e.clientY - drag.y) * drag.k;
      apply();
    });
    window.addEventListener('mouseup', function () {
      drag = null;
      box.classList.remove('dragging');
    });
    toolbar('machine', {
      in: function () { var c = centre(); zoom(0.8, c[0], c[1]); },
      out: function () { var c = centre(); zoom(1.25, c[0], c[1]); },
      fit: function () { view = { x: full.x, y: full.y, w: full.w, h: full.h }; apply(); }
    });

    svg.addEventListener('mousemove', function (e) {
      if (drag) { hideTip(); return; }
      var t = e.target;
      var k = t.getAttribute('data-k');
      var n = t.getAttribute('data-n');
      if (k !== null) {
        var l = M.links[+k];
        var h = '<b>' + esc(M.nodes[l[0]][0]) + ' &rarr; ' + esc(M.nodes[l[1]][0]) + '</b><table>';
        h += row('kind', l[2] + ', ' + l[3] + ' GB/s' + (l[4] > 1 ? ' each, ' + l[4] + ' parallel links' : ''));
        h += row('bytes', fmtBytes(l[5]));
        h += row(l[4] > 1 ? 'busiest link busy' : 'busy', fmtPs(l[6]));
        h += row('utilisation', pct(l[7]) + ' of the kernel time');
        showTip(h + '</table>', e);
      } else if (n !== null) {
        var node = M.nodes[+n];
        var hh = '<b>' + esc(node[0]) + '</b><table>' + row('part', node[1]);
        if (node[2] >= 0) hh += row('PE of the run', M.pes[node[2]].pe) + peTip(M.pes[node[2]]);
        showTip(hh + '</table>', e);
      } else {
        hideTip();
      }
    });
    svg.addEventListener('mouseleave', hideTip);
    return strokes.length;
  }

  // ---- toolbar buttons --------------------------------------------------

  function toolbar(name, acts) {
    var bar = document.querySelector('.toolbar[data-for="' + name + '"]');
    bar.addEventListener('click', function (e) {
      var b = e.target.closest('button');
      if (!b) return;
      var f = acts[b.getAttribute('data-act')];
      if (f) f();
    });
  }

  // ---- the timeline -----------------------------------------------------

  var PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948',
    '#b07aa1', '#ff9da7', '#9c755f', '#86bcb6', '#d37295', '#a0cbe8'];
  var LABEL_W = 210;
  var AXIS_H = 26;
  var GROUP_H = 20;
  var TRACK_H = 16;

  /** A step of 1, 2 or 5 times a power of ten giving about `n` ticks over `span`. */
  function niceStep(span, n) {
    var raw = Math.max(span / n, 1e-9);
    var p = Math.pow(10, Math.floor(Math.log10(raw)));
    var m = raw / p;
    return p * (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10);
  }

  function initTimeline() {
    var T = DATA.timeline;
    var canvas = document.getElementById('tl-canvas');
    var labels = document.getElementById('tl-labels');
    var box = document.getElementById('timeline-box');
    var range = document.getElementById('tl-range');
    var ctx = canvas.getContext('2d');
    var n = T.spans.length / 5;
    if (n !== Math.floor(n)) throw new Error('timeline: the span array is not whole');

    // Spans by track: the array is sorted by track, then start.
    var nt = T.tracks.length;
    var first = new Array(nt + 1).fill(0);
    var starts = new Float64Array(n);
    var ends = new Float64Array(n);
    for (var i = 0; i < n; i++) {
      var tr = T.spans[5 * i];
      if (tr >= nt) throw new Error('timeline: span ' + i + ' on track ' + tr + ' of ' + nt);
      first[tr + 1]++;
      starts[i] = T.spans[5 * i + 1];
      ends[i] = T.spans[5 * i + 2];
    }
    for (var t = 0; t < nt; t++) first[t + 1] += first[t];

    // Rows: each group's header, then its tracks.
    var rows = [];
    var y = AXIS_H;
    var byGroup = T.groups.map(function () { return []; });
    T.tracks.forEach(function (tk, k) { byGroup[tk.group].push(k); });
    T.groups.forEach(function (g, gi) {
      rows.push({ group: gi, track: -1, y: y, h: GROUP_H });
      y += GROUP_H;
      byGroup[gi].forEach(function (k) {
        rows.push({ group: gi, track: k, y: y, h: TRACK_H });
        y += TRACK_H;
      });
    });
    var height = y + 4;
    labels.style.height = height + 'px';
    rows.forEach(function (r) {
      var d = document.createElement('div');
      if (r.track < 0) {
        d.className = 'tl-group';
        d.textContent = T.groups[r.group].name;
      } else {
        d.className = 'tl-track';
        d.setAttribute('data-track', String(r.track));
        d.textContent = T.tracks[r.track].name;
        d.title = T.tracks[r.track].name;
      }
      d.style.top = r.y + 'px';
      d.style.height = r.h + 'px';
      labels.appendChild(d);
    });

    var full0 = 0;
    var full1 = Math.max(T.end, 1);
    var pad = (full1 - full0) * 0.01;
    var v0 = full0 - pad;
    var v1 = full1 + pad;
    var width = 0;

    function size() {
      var dpr = window.devicePixelRatio || 1;
      width = Math.max(200, box.clientWidth - LABEL_W - 2);
      canvas.style.width = width + 'px';
      canvas.style.height = height + 'px';
      canvas.width = Math.round(width * dpr);
      canvas.height = Math.round(height * dpr);
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    }

    // The first span of track t whose end is at or after time x.
    function firstEnding(t, x) {
      var lo = first[t];
      var hi = first[t + 1];
      while (lo < hi) {
        var mid = (lo + hi) >> 1;
        if (ends[mid] < x) lo = mid + 1; else hi = mid;
      }
      return lo;
    }

    // Draws the view; returns how many spans it drew.
    function draw() {
      var drawn = 0;
      var k = width / (v1 - v0);
      ctx.clearRect(0, 0, width, height);
      ctx.font = '10px Helvetica, Arial, sans-serif';
      ctx.textBaseline = 'middle';
      // Grid and axis.
      var step = niceStep(v1 - v0, Math.max(2, width / 110));
      ctx.strokeStyle = '#e6e6e6';
      ctx.fillStyle = '#444';
      ctx.lineWidth = 1;
      for (var g = Math.ceil(v0 / step) * step; g <= v1; g += step) {
        var gx = Math.round((g - v0) * k) + 0.5;
        ctx.beginPath();
        ctx.moveTo(gx, AXIS_H - 6);
        ctx.lineTo(gx, height);
        ctx.stroke();
        ctx.fillText(fmtTick(g, step), gx + 3, AXIS_H / 2 - 2);
      }
      rows.forEach(function (r, ri) {
        if (r.track < 0) {
          ctx.fillStyle = '#f3f3f3';
          ctx.fillRect(0, r.y, width, r.h);
          var gr = T.groups[r.group];
          if (gr.pe >= 0) {
            var a = (gr.start - v0) * k;
            var b = (gr.end - v0) * k;
            ctx.fillStyle = '#c9d3df';
            ctx.fillRect(Math.max(a, -1), r.y + 5, Math.max(1, Math.min(b, width + 1) - Math.max(a, -1)), r.h - 10);
          }
          return;
        }
        if (ri % 2 === 0) {
          ctx.fillStyle = '#fbfbfb';
          ctx.fillRect(0, r.y, width, r.h);
        }
        var t = r.track;
        var last = first[t + 1];
        var lastPx = -1;
        for (var i = firstEnding(t, v0); i < last && starts[i] <= v1; i++) {
          var x0 = (starts[i] - v0) * k;
          var x1 = (ends[i] - v0) * k;
          var px = Math.floor(x0);
          if (x1 - x0 < 1 && px === lastPx) continue;
          lastPx = px;
          var name = T.spans[5 * i + 3];
          ctx.fillStyle = PALETTE[name % PALETTE.length];
          var cx0 = Math.max(x0, -2);
          var cx1 = Math.min(x1, width + 2);
          // A pixel of gap keeps neighbouring spans of one colour apart.
          var w = cx1 - cx0;
          ctx.fillRect(cx0, r.y + 2, Math.max(1, w > 3 ? w - 1 : w), r.h - 4);
          drawn++;
          if (cx1 - cx0 > 36) {
            ctx.save();
            ctx.beginPath();
            ctx.rect(cx0, r.y, cx1 - cx0, r.h);
            ctx.clip();
            ctx.fillStyle = '#fff';
            ctx.fillText(T.names[name], cx0 + 3, r.y + r.h / 2);
            ctx.restore();
          }
        }
      });
      range.textContent = fmtPs(Math.max(0, v0)) + ' to ' + fmtPs(v1) + ' (' + fmtPs(v1 - v0) + ' shown)';
      return drawn;
    }

    function zoom(f, at) {
      var w = (v1 - v0) * f;
      var fullW = (full1 - full0) + 2 * pad;
      if (w < 100) w = 100;
      if (w > fullW * 4) w = fullW * 4;
      var frac = (at - v0) / (v1 - v0);
      v0 = at - frac * w;
      v1 = v0 + w;
      draw();
    }
    function pan(dt) {
      v0 += dt;
      v1 += dt;
      draw();
    }
    function timeAt(clientX) {
      var r = canvas.getBoundingClientRect();
      return v0 + (clientX - r.left) / width * (v1 - v0);
    }

    canvas.addEventListener('wheel', function (e) {
      e.preventDefault();
      zoom(e.deltaY > 0 ? 1.25 : 0.8, timeAt(e.clientX));
    }, { passive: false });
    var drag = null;
    canvas.addEventListener('mousedown', function (e) {
      if (e.button !== 0) return;
      drag = { x: e.clientX, v0: v0, v1: v1 };
      canvas.classList.add('dragging');
      e.preventDefault();
    });
    window.addEventListener('mousemove', function (e) {
      if (!drag) return;
      var dt = (e.clientX - drag.x) / width * (drag.v1 - drag.v0);
      v0 = drag.v0 - dt;
      v1 = drag.v1 - dt;
      draw();
    });
    window.addEventListener('mouseup', function () {
      drag = null;
      canvas.classList.remove('dragging');
    });
    toolbar('timeline', {
      in: function () { zoom(0.8, (v0 + v1) / 2); },
      out: function () { zoom(1.25, (v0 + v1) / 2); },
      left: function () { pan(-(v1 - v0) * 0.25); },
      right: function () { pan((v1 - v0) * 0.25); },
      fit: function () { v0 = full0 - pad; v1 = full1 + pad; draw(); }
    });

    canvas.addEventListener('mousemove', function (e) {
      if (drag) { hideTip(); return; }
      var r = canvas.getBoundingClientRect();
      var py = e.clientY - r.top;
      var hit = null;
      for (var j = 0; j < rows.length; j++) {
        if (py >= rows[j].y && py < rows[j].y + rows[j].h) { hit = rows[j]; break; }
      }
      if (!hit) { hideTip(); return; }
      var tt = timeAt(e.clientX);
      var slack = 3 / width * (v1 - v0);
      if (hit.track < 0) {
        var gr = T.groups[hit.group];
        if (gr.pe >= 0) {
          showTip('<b>' + esc(gr.name) + '</b><table>' + peTip(DATA.machine.pes[gr.pe]) + '</table>', e);
        } else {
          hideTip();
        }
        return;
      }
      var i = firstEnding(hit.track, tt - slack);
      if (i < first[hit.track + 1] && starts[i] <= tt + slack) {
        var h = '<b>' + esc(T.names[T.spans[5 * i + 3]]) + '</b><table>';
        h += row('track', T.groups[hit.group].name + ' / ' + T.tracks[hit.track].name);
        h += row('start', fmtPs(starts[i]));
        h += row('end', fmtPs(ends[i]));
        h += row('duration', fmtPs(ends[i] - starts[i]));
        h += row('what', T.infos[T.spans[5 * i + 4]]);
        showTip(h + '</table>', e);
      } else {
        hideTip();
      }
    });
    canvas.addEventListener('mouseleave', hideTip);
    window.addEventListener('resize', function () { size(); draw(); });
    // Where span i's middle is on screen now (for the self-test).
    function pointOf(i) {
      var t = T.spans[5 * i];
      var r = canvas.getBoundingClientRect();
      for (var j = 0; j < rows.length; j++) {
        if (rows[j].track === t) {
          var mid = (starts[i] + ends[i]) / 2;
          return { x: r.left + (mid - v0) / (v1 - v0) * width, y: r.top + rows[j].y + rows[j].h / 2 };
        }
      }
      return null;
    }

    size();
    return { tracks: nt, spans: n, drawn: draw(), pointOf: pointOf, starts: starts, ends: ends };
  }

  // ---- self-test (open the page as FILE#selftest) ------------------------

  /**
   * Drives the page with synthetic events, as a person would with a mouse,
   * and returns what did not respond: zoom, pan, the buttons and the
   * tooltips of the machine and the timeline.
   */
  function selfTest(tl) {
    var fails = [];
    function check(ok, what) { if (!ok) fails.push(what); }
    function wheel(el, x, y, dy) {
      el.dispatchEvent(new WheelEvent('wheel', { deltaY: dy, clientX: x, clientY: y, bubbles: true, cancelable: true }));
    }
    function drag(el, x, y, dx, dy) {
      el.dispatchEvent(new MouseEvent('mousedown', { button: 0, clientX: x, clientY: y, bubbles: true, cancelable: true }));
      window.dispatchEvent(new MouseEvent('mousemove', { clientX: x + dx, clientY: y + dy }));
      window.dispatchEvent(new MouseEvent('mouseup', { clientX: x + dx, clientY: y + dy }));
    }
    function hover(el, x, y) {
      el.dispatchEvent(new MouseEvent('mousemove', { clientX: x, clientY: y, bubbles: true }));
    }
    function press(bar, act) {
      document.querySelector('.toolbar[data-for="' + bar + '"] button[data-act="' + act + '"]').click();
    }
    function centre(el) {
      var r = el.getBoundingClientRect();
      return [r.left + r.width / 2, r.top + r.height / 2];
    }

    // The machine.
    var svg = document.getElementById('machine-svg');
    var box = document.getElementById('machine-box');
    var vb = function () { return svg.getAttribute('viewBox').split(' ').map(Number); };
    var c = centre(box);
    var v0 = vb();
    wheel(box, c[0], c[1], -100);
    check(vb()[2] < v0[2], 'machine: the wheel did not zoom in');
    var v1 = vb();
    drag(box, c[0], c[1], 60, 40);
    check(vb()[0] < v1[0] && vb()[1] < v1[1], 'machine: dragging did not pan');
    press('machine', 'out');
    check(vb()[2] > v1[2], 'machine: the zoom-out button did nothing');
    press('machine', 'fit');
    check(vb().join(' ') === v0.join(' '), 'machine: fit did not restore the whole machine');
    var busy = svg.querySelector('line.link.busy');
    if (busy) {
      var bc = centre(busy);
      hover(busy, bc[0], bc[1]);
      check(!tip.hidden && tip.textContent.indexOf('utilisation') >= 0, 'machine: no tooltip on a busy link');
    }
    var pe = svg.querySelector('.node.pe.ran');
    var pc = centre(pe);
    hover(pe, pc[0], pc[1]);
    check(!tip.hidden && tip.textContent.indexOf('kernel time') >= 0, 'machine: no tooltip on a PE');
    check(tip.textContent.indexOf('bound') >= 0, 'machine: the PE tooltip has no bound');
    hideTip();

    // The timeline.
    var canvas = document.getElementById('tl-canvas');
    var range = document.getElementById('tl-range');
    var r0 = range.textContent;
    var cc = centre(canvas);
    wheel(canvas, cc[0], cc[1], -100);
    check(range.textContent !== r0, 'timeline: the wheel did not zoom');
    var r1 = range.textContent;
    drag(canvas, cc[0], cc[1], 80, 0);
    check(range.textContent !== r1, 'timeline: dragging did not pan');
    ['in', 'out', 'left', 'right'].forEach(function (act) {
      var before = range.textContent;
      press('timeline', act);
      check(range.textContent !== before, 'timeline: the ' + act + ' button did nothing');
    });
    press('timeline', 'fit');
    check(range.textContent === r0, 'timeline: fit did not restore the whole run');
    // The longest span, so it is wide enough to point at.
    var best = 0;
    for (var i = 1; i < tl.starts.length; i++) {
      if (tl.ends[i] - tl.starts[i] > tl.ends[best] - tl.starts[best]) best = i;
    }
    var p = tl.pointOf(best);
    if (p) {
      hover(canvas, p.x, p.y);
      check(!tip.hidden && tip.textContent.indexOf('duration') >= 0, 'timeline: no tooltip on a span');
    } else {
      check(false, 'timeline: the longest span has no row');
    }
    hideTip();
    return fails;
  }

  // ---- start ------------------------------------------------------------

  var links = initMachine();
  var tl = initTimeline();
  var results = document.querySelectorAll('#results-table tr.result-row').length;
  var status = document.getElementById('report-status');
  if (status.getAttribute('data-state') !== 'error') {
    status.setAttribute('data-state', 'ready');
    status.setAttribute('data-links', String(links));
    status.setAttribute('data-tracks', String(tl.tracks));
    status.setAttribute('data-spans', String(tl.spans));
    status.setAttribute('data-rows', String(results));
    status.setAttribute('data-drawn', String(tl.drawn));
    status.textContent = 'ready: ' + links + ' link strokes, ' + tl.tracks + ' timeline tracks with ' +
      tl.spans + ' spans, ' + results + ' result rows';
  }
  if (window.location.hash === '#selftest') {
    var fails = selfTest(tl);
    status.setAttribute('data-selftest', fails.length ? 'fail: ' + fails.join('; ') : 'pass');
  }
})();
