/* The run page's only script: live updates by conditional polling, the log tail, the
 * CSV plot on a <canvas>, and the DAG's repaint. No framework, nothing fetched from
 * elsewhere. Every text from the server goes in as text (textContent), never as HTML. */
(function () {
  'use strict';
  var POLL = parseFloat(document.body.dataset.pollSeconds || '1') * 1000;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function size(bytes) {
    var units = ['B', 'kB', 'MB', 'GB', 'TB'];
    var n = Number(bytes), u = 0;
    while (n >= 1000 && u < units.length - 1) { n /= 1000; u++; }
    return (u ? n.toFixed(1) : String(n)) + ' ' + units[u];
  }

  function badge(state) { return el('span', { class: 'state state-' + state }, state); }

  function pctText(percent, message) {
    var parts = [];
    if (percent !== null && percent !== undefined) parts.push(percent.toFixed(1) + '%');
    if (message) parts.push(message);
    return parts.join(' · ');
  }

  /* GET ``url`` every POLL ms with If-None-Match: an unchanged view is a bodiless 304.
   * ``onData`` gets each changed body; polling ends when ``done(body)`` is true. */
  function poll(url, onData, done) {
    var etag = null;
    function tick() {
      var headers = etag ? { 'If-None-Match': etag } : {};
      fetch(url, { headers: headers, credentials: 'same-origin', cache: 'no-store' })
        .then(function (r) {
          if (r.status === 401) { window.location.reload(); return null; }
          if (r.status !== 200) return null;
          etag = r.headers.get('ETag');
          return r.json();
        })
        .then(function (body) {
          if (body) onData(body);
          if (body && done && done(body)) return;
          setTimeout(tick, document.hidden ? POLL * 5 : POLL);
        })
        .catch(function () { setTimeout(tick, POLL * 3); });
    }
    setTimeout(tick, POLL);
  }

  /* --- the runs list --- */
  function runsList(table) {
    var tbody = table.querySelector('tbody');
    poll(table.dataset.live, function (body) {
      var rows = body.items.map(function (row) {
        var tr = el('tr', { 'data-run': row.id });
        var link = el('a', { href: row.url }, row.id.slice(0, 8));
        tr.appendChild(el('td')).appendChild(link);
        tr.appendChild(el('td', {}, row.kind));
        tr.appendChild(el('td', {}, row.what));
        tr.appendChild(el('td')).appendChild(badge(row.state));
        var cell = tr.appendChild(el('td'));
        cell.appendChild(el('progress', { max: '100', value: String(row.percent || 0) }));
        cell.appendChild(document.createTextNode(' '));
        var pct = row.percent === null ? '' : Math.round(row.percent) + '% ';
        cell.appendChild(el('span', {}, pct + row.message));
        tr.appendChild(el('td')).appendChild(el('time', {}, row.created_at.slice(0, 19).replace('T', ' ')));
        return tr;
      });
      if (!rows.length) {
        var empty = el('tr');
        empty.appendChild(el('td', { colspan: '6' }, 'No runs.'));
        rows = [empty];
      }
      tbody.replaceChildren.apply(tbody, rows);
    });
  }

  /* --- one run --- */
  function runPage(root) {
    var initial = JSON.parse(document.getElementById('live-initial').textContent);
    var plot = document.getElementById('plot-section') ? plotter(root) : null;
    var dag = document.getElementById('dag') ? dagPainter() : null;
    var log = document.getElementById('log');
    var logs = log ? tail(log) : null;
    function apply(d) {
      var state = document.getElementById('state');
      state.textContent = d.state;
      state.className = 'state state-' + d.state;
      document.getElementById('attempt').textContent = d.attempt;
      var bar = document.getElementById('progress');
      bar.value = d.percent || 0;
      bar.textContent = (d.percent || 0) + '%';
      document.getElementById('progress-text').textContent = pctText(d.percent, d.message);
      document.getElementById('cancel-form').hidden = d.final;
      document.querySelectorAll('form[data-action]').forEach(function (form) {
        form.hidden = (d.actions || []).indexOf(form.dataset.action) < 0;
      });
      var box = document.getElementById('error-box');
      box.hidden = !d.error;
      if (d.error) {
        document.getElementById('error-type').textContent = d.error.type;
        document.getElementById('error-message').textContent = d.error.message;
        var where = document.getElementById('error-where');
        var det = d.error.details || {};
        var what = det.file || (det.transform ? 'transform ' + det.transform : '');
        where.textContent = what ? 'In ' + what + (det.line ? ', line ' + det.line : '') +
          (det.column ? ', column ' + det.column : '') : '';
        markSqlError(d.error);
      }
      var history = document.getElementById('history');
      history.replaceChildren.apply(history, d.history.map(function (c) {
        var tr = el('tr');
        tr.appendChild(el('td')).appendChild(badge(c.state));
        tr.appendChild(el('td', {}, c.attempt));
        tr.appendChild(el('td', {}, c.at.slice(0, 19).replace('T', ' ')));
        tr.appendChild(el('td', {}, c.reason));
        return tr;
      }));
      var artifacts = document.getElementById('artifacts');
      if (artifacts && d.artifacts.length) {
        artifacts.replaceChildren.apply(artifacts, d.artifacts.map(function (a) {
          var tr = el('tr');
          var cell = tr.appendChild(el('td'));
          cell.appendChild(el('a', { href: a.url, download: '' }, a.name));
          if (a.partial) cell.appendChild(document.createTextNode(' (partial)'));
          tr.appendChild(el('td', { 'data-bytes': a.size }, size(a.size)));
          return tr;
        }));
      }
      if (plot) plot.artifacts(d.artifacts);
      if (dag && d.nodes) dag(d.nodes);
      var waiting = document.getElementById('waiting-reason');
      if (waiting) { waiting.hidden = !d.waiting_reason; waiting.textContent = d.waiting_reason || ''; }
      if (logs) logs(d);
      root.dataset.state = d.state;
    }
    apply(initial);
    if (!initial.final) poll(root.dataset.live, apply, function (d) { return d.final; });
  }

  /* The console log from its cursor: only lines after the last one shown are fetched,
   * and only when the live view says there are more (``log_seq``), so a quiet run costs
   * no log requests. Returns the hook the live updates call. */
  function tail(pre) {
    var after = 0, wanted = 0, final = false, busy = false;
    function more() {
      if (busy) return;
      if (after >= wanted) { if (final) pre.dataset.complete = 'true'; return; }
      busy = true;
      fetch(pre.dataset.logs + '?after=' + after, { credentials: 'same-origin', cache: 'no-store' })
        .then(function (r) { return r.status === 200 ? r.json() : null; })
        .then(function (page) {
          busy = false;
          if (!page) { setTimeout(more, POLL * 3); return; }
          if (page.lines.length) {
            var atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
            pre.appendChild(document.createTextNode(page.lines.join('\n') + '\n'));
            if (atBottom) pre.scrollTop = pre.scrollHeight;
          }
          after = page.lines.length ? page.next_after : Math.max(after, wanted);
          pre.dataset.after = after;
          more();
        })
        .catch(function () { busy = false; setTimeout(more, POLL * 3); });
    }
    return function (d) {
      wanted = Math.max(wanted, d.log_seq);
      final = d.final;
      more();
    };
  }

  /* --- the plot --- */
  var COLOURS = ['#0969da', '#cf222e', '#1a7f37', '#8250df', '#bc4c00', '#1b7c83'];

  function plotter() {
    var section = document.getElementById('plot-section');
    var pick = document.getElementById('plot-artifact');
    var xs = document.getElementById('plot-x');
    var ys = document.getElementById('plot-y');
    var status = document.getElementById('plot-status');
    var canvas = document.getElementById('plot');
    var shown = null;

    function load(columnsChanged) {
      var params = new URLSearchParams({ artifact: pick.value });
      if (!columnsChanged) {
        if (xs.value) params.set('x', xs.value);
        ys.querySelectorAll('input:checked').forEach(function (box) { params.append('y', box.value); });
      }
      status.textContent = 'Loading ' + pick.value + '…';
      var started = performance.now();
      fetch(section.dataset.plot + '?' + params, { credentials: 'same-origin' })
        .then(function (r) { return r.json().then(function (b) { return [r.status, b]; }); })
        .then(function (pair) {
          var body = pair[1];
          if (pair[0] !== 200) { status.textContent = body.message; return; }
          if (columnsChanged) columns(body);
          draw(canvas, body);
          var points = body.series.reduce(function (n, s) { return n + s.x.length; }, 0);
          status.textContent = body.rows + ' rows' + (body.downsampled ? ', drawn as ' + points + ' points (min and max of each bucket)' : '') +
            ' in ' + Math.round(performance.now() - started) + ' ms.';
        });
    }

    function columns(body) {
      xs.replaceChildren.apply(xs, body.columns.map(function (c) {
        var option = el('option', { value: c }, c);
        if (c === body.x) option.selected = true;
        return option;
      }));
      var legend = ys.querySelector('legend');
      ys.replaceChildren(legend);
      body.columns.forEach(function (c, i) {
        var id = 'plot-y-' + i;
        var box = el('input', { type: 'checkbox', id: id, value: c });
        box.checked = body.ys.indexOf(c) >= 0;
        var label = el('label', { for: id });
        label.appendChild(box);
        label.appendChild(document.createTextNode(' ' + c));
        ys.appendChild(label);
      });
    }

    pick.addEventListener('change', function () { load(true); });
    xs.addEventListener('change', function () { load(false); });
    ys.addEventListener('change', function () { load(false); });

    return {
      artifacts: function (list) {
        var names = list.filter(function (a) { return /\.csv$/i.test(a.name); }).map(function (a) { return a.name; });
        var key = names.join('\n');
        if (key === shown) return;
        shown = key;
        section.hidden = !names.length;  /* no CSV, no plot to offer */
        var current = pick.value;
        pick.replaceChildren.apply(pick, names.map(function (n) { return el('option', { value: n }, n); }));
        if (names.indexOf(current) >= 0) pick.value = current;
        if (names.length && names.indexOf(current) < 0) load(true);
      }
    };
  }

  function ticks(lo, hi, count) {
    var out = [];
    for (var i = 0; i <= count; i++) out.push(lo + (hi - lo) * i / count);
    return out;
  }

  function label(value, kind) {
    if (kind === 'time') return new Date(value).toISOString().slice(0, 16).replace('T', ' ');
    var abs = Math.abs(value);
    return abs !== 0 && (abs < 0.01 || abs >= 1e6) ? value.toExponential(2) : String(Math.round(value * 100) / 100);
  }

  /* Draw every series as a line; the data drawn stays on window.pagePlot for inspection. */
  function draw(canvas, body) {
    window.pagePlot = body;
    var ratio = window.devicePixelRatio || 1;
    var width = canvas.clientWidth || 900;
    var height = 360;
    canvas.width = width * ratio;
    canvas.height = height * ratio;
    var g = canvas.getContext('2d');
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    var left = 70, right = 15, top = 25, bottom = 45;
    var all = body.series.filter(function (s) { return s.x.length; });
    if (!all.length) { g.fillText('No numeric values in these columns.', left, top + 20); return; }
    var x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    all.forEach(function (s) {
      for (var i = 0; i < s.x.length; i++) {
        if (s.x[i] < x0) x0 = s.x[i]; if (s.x[i] > x1) x1 = s.x[i];
        if (s.y[i] < y0) y0 = s.y[i]; if (s.y[i] > y1) y1 = s.y[i];
      }
    });
    if (x1 === x0) x1 = x0 + 1;
    if (y1 === y0) { y1 = y0 + 1; y0 = y0 - 1; }
    var sx = function (v) { return left + (v - x0) / (x1 - x0) * (width - left - right); };
    var sy = function (v) { return height - bottom - (v - y0) / (y1 - y0) * (height - top - bottom); };
    g.strokeStyle = '#d0d7de'; g.fillStyle = '#1b1f24'; g.font = '12px system-ui, sans-serif'; g.lineWidth = 1;
    ticks(y0, y1, 5).forEach(function (v) {
      g.beginPath(); g.moveTo(left, sy(v)); g.lineTo(width - right, sy(v)); g.stroke();
      g.textAlign = 'right'; g.fillText(label(v, 'number'), left - 6, sy(v) + 4);
    });
    ticks(x0, x1, 4).forEach(function (v, i) {
      g.textAlign = i === 0 ? 'left' : (i === 4 ? 'right' : 'center');
      g.fillText(label(v, body.x_kind), sx(v), height - bottom + 16);
    });
    g.textAlign = 'center';
    g.fillText(body.x_kind === 'row' ? 'row' : body.x, left + (width - left - right) / 2, height - 8);
    all.forEach(function (s, n) {
      g.strokeStyle = COLOURS[n % COLOURS.length]; g.lineWidth = 1.5;
      g.beginPath();
      for (var i = 0; i < s.x.length; i++) {
        if (i === 0) g.moveTo(sx(s.x[i]), sy(s.y[i])); else g.lineTo(sx(s.x[i]), sy(s.y[i]));
      }
      g.stroke();
      g.fillStyle = g.strokeStyle; g.textAlign = 'left';
      g.fillText('— ' + s.name, left + 10 + n * 170, 14);
    });
    canvas.dataset.points = all.reduce(function (k, s) { return k + s.x.length; }, 0);
    canvas.setAttribute('aria-label', 'Plot of ' + all.map(function (s) { return s.name; }).join(', ') + ' against ' + body.x);
  }

  /* A SQL error's line, marked in its transform's SQL (the flow page; once). */
  function markSqlError(error) {
    var det = error.details || {};
    if (error.type !== 'SQL_ERROR' || !det.transform) return;
    document.querySelectorAll('details.sql').forEach(function (box) {
      if (box.dataset.transform !== det.transform) return;
      box.open = true;
      if (!det.line) return;
      var line = box.querySelector('li[data-line="' + Number(det.line) + '"]');
      if (!line || line.classList.contains('error-line')) return;
      line.classList.add('error-line');
      line.setAttribute('aria-current', 'true');
      line.appendChild(document.createTextNode(' '));
      line.appendChild(el('strong', { class: 'sql-marker' },
        '\u25c0 error here' + (det.column ? ', column ' + det.column : '')));
    });
  }

  /* --- the DAG --- */
  function dagPainter() {
    var runHref = document.getElementById('dag-box').dataset.runHref;  /* carries any mount prefix */
    var boxes = {};
    document.querySelectorAll('#dag .node').forEach(function (a) { boxes[a.dataset.node] = a; });
    var rows = {};
    document.querySelectorAll('tr[data-node-row]').forEach(function (tr) { rows[tr.dataset.nodeRow] = tr; });
    return function (nodes) {
      nodes.forEach(function (node) {
        var a = boxes[node.name];
        if (!a) return;
        var many = node.instances.length > 1;
        var detail = node.detail !== undefined ? node.detail : (many ? ' · ' + node.instances.length + ' instances' : '');
        a.setAttribute('class', 'node state-' + node.state);
        a.setAttribute('aria-label', node.name + ': ' + node.state + detail);  /* what the box says */
        a.querySelector('.state-text').textContent = node.state + detail;
        if (!many && node.instances.length && node.instances[0].run_id) {
          a.setAttribute('href', runHref + node.instances[0].run_id);
        }
        var tr = rows[node.name];
        if (!tr) return;
        var first = tr.querySelector('td .state');
        first.textContent = node.state; first.className = 'state state-' + node.state;
        tr.querySelectorAll('td[data-cell]').forEach(function (td) {  /* a flow's steps */
          var value = node[td.dataset.cell];
          if (value === null || value === undefined) td.textContent = '';
          else if (td.dataset.cell === 'rows') td.textContent = Number(value).toLocaleString('en-US');
          else if (td.dataset.cell === 'seconds') td.textContent = Number(value).toFixed(3);
          else td.textContent = value;
        });
        tr.querySelectorAll('.instance').forEach(function (span) {
          var item = node.instances[Number(span.dataset.instance)];
          var b = span.querySelector('.state');
          if (item && b) { b.textContent = item.state; b.className = 'state state-' + item.state; }
          if (item && item.run_id && !span.querySelector('a')) {
            var link = el('a', { href: runHref + item.run_id }, 'run');
            span.insertBefore(link, span.firstChild);
          }
        });
      });
    };
  }

  document.addEventListener('DOMContentLoaded', function () {
    var table = document.getElementById('runs');
    if (table) runsList(table);
    var run = document.getElementById('run');
    if (run) runPage(run);
  });
})();
