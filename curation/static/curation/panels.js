/* The panel editor: move, resize, split and draw panel boxes on the page, with an undo stack
 * for unsaved edits, a live overlap warning, splits snapped to the white gutter, and crops
 * that refresh when the re-render task finishes. The server refuses what this page warns
 * about (overlaps), so the page is a convenience, never the guard. */
(function () {
  'use strict';
  var dataEl = document.getElementById('panel-data');
  var stage = document.getElementById('stage');
  var form = document.getElementById('panel-form');
  if (!dataEl || !stage || !form) return;
  var rows = JSON.parse(dataEl.textContent);
  var W = parseFloat(stage.dataset.width), H = parseFloat(stage.dataset.height);
  var MIN = 4, TOLERANCE = 0.5;
  var blank = document.getElementById('page-blank');
  if (blank) blank.style.paddingBottom = (H / W * 100) + '%';
  var statusLine = document.getElementById('editor-status');
  var warning = document.getElementById('overlap-warning');
  var $ = function (id) { return document.getElementById(id); };

  var items = [];      // {row, bbox, kind: 'panel' | 'part' | 'new', el}
  var split = null;    // {source: item} while a split is unsaved
  var history = [];    // snapshots before each unsaved edit (the undo stack)
  var drawing = false, drag = null, current = null, leaving = false, note = '';

  function round(v) { return Math.round(v * 100) / 100; }
  function same(a, b) { for (var i = 0; i < 4; i++) if (Math.abs(a[i] - b[i]) > 0.01) return false; return true; }
  function pct(el, b) {
    el.style.left = (b[0] / W * 100) + '%'; el.style.top = (b[1] / H * 100) + '%';
    el.style.width = ((b[2] - b[0]) / W * 100) + '%'; el.style.height = ((b[3] - b[1]) / H * 100) + '%';
  }
  function outline(cls, b) {
    var el = document.createElement('div'); el.className = 'outline ' + cls; pct(el, b); stage.appendChild(el);
  }
  outline('figure', stage.dataset.figure.split(',').map(Number));
  rows.forEach(function (row) { if (row.machine && !same(row.machine, row.bbox)) outline('machine', row.machine); });

  function name(item) {
    if (item.kind === 'part') return 'new part of the split';
    if (item.kind === 'new') return 'new box ' + (items.filter(function (i) { return i.kind === 'new'; }).indexOf(item) + 1);
    return 'panel ' + (item.row.letter || item.row.index + 1);
  }
  function tag(item) {
    if (item.kind === 'part') return 'new';
    if (item.kind === 'new') return '+' + (items.filter(function (i) { return i.kind === 'new'; }).indexOf(item) + 1);
    return item.row.letter || '#' + (item.row.index + 1);
  }
  function changedItem(item) {
    return item.kind !== 'panel' || !same(item.bbox, item.row.bbox) || (split && split.source === item);
  }
  function draw(item) {
    pct(item.el, item.bbox);
    item.el.querySelector('.tag').textContent = tag(item);
    item.el.setAttribute('aria-label', name(item) + ': ' + item.bbox.map(Math.round).join(', ') + ' points');
    if (item.kind === 'panel') {
      $('box_' + item.row.pair).value = item.bbox.join(',');
      item.el.classList.toggle('dirty', !same(item.bbox, item.row.bbox));
    }
  }
  function make(row, bbox, kind) {
    var el = document.createElement('div');
    el.className = 'box' + (kind !== 'panel' ? ' ' + kind : ''); el.tabIndex = 0; el.setAttribute('role', 'button');
    ['tag', 'h nw', 'h ne', 'h sw', 'h se'].forEach(function (cls) {
      var span = document.createElement('span'); span.className = cls; el.appendChild(span);
    });
    var item = {row: row, bbox: bbox.slice(), kind: kind, el: el};
    if (kind === 'panel') el.dataset.pair = row.pair;
    var cb = kind === 'panel' && $('merge_' + row.pair);
    if (cb && cb.checked) el.classList.add('checked');
    stage.appendChild(el); items.push(item); draw(item);
    el.addEventListener('pointerdown', function (e) { startDrag(e, item); });
    el.addEventListener('focus', function () { current = item; });
    return item;
  }

  // --- the undo stack ------------------------------------------------------------------
  function snapshot() {
    return {
      items: items.map(function (i) { return {row: i.row, bbox: i.bbox.slice(), kind: i.kind}; }),
      split: split ? items.indexOf(split.source) : -1,
    };
  }
  function restore(snap) {
    var focusedIndex = current ? items.indexOf(current) : -1;
    items.forEach(function (i) { i.el.remove(); });
    items = []; split = null; current = null;
    snap.items.forEach(function (i) { make(i.row, i.bbox, i.kind); });
    if (snap.split >= 0) split = {source: items[snap.split]};
    var again = items[Math.min(focusedIndex, items.length - 1)];
    if (focusedIndex >= 0 && again) again.el.focus();
  }
  var initial = null;
  function remember() { history.push(snapshot()); }
  function undo() {
    if (!history.length) { say('Nothing to undo.'); return; }
    restore(history.pop()); say('Undone.'); changed();
  }
  function discard() {
    if (!history.length) return;
    history = []; restore(initial); say('Unsaved edits discarded.'); changed();
  }

  // --- state, overlaps and buttons -----------------------------------------------------
  function overlaps() {
    var found = [];
    for (var i = 0; i < items.length; i++) {
      for (var j = i + 1; j < items.length; j++) {
        var a = items[i], b = items[j];
        if (!changedItem(a) && !changedItem(b)) continue;  // as the server: only what you changed
        var w = Math.min(a.bbox[2], b.bbox[2]) - Math.max(a.bbox[0], b.bbox[0]);
        var h = Math.min(a.bbox[3], b.bbox[3]) - Math.max(a.bbox[1], b.bbox[1]);
        if (w > TOLERANCE && h > TOLERANCE) found.push([a, b]);
      }
    }
    return found;
  }
  function say(text) { note = text; statusLine.textContent = text; }
  function changed() {
    var moved = items.some(function (i) { return i.kind === 'panel' && !same(i.bbox, i.row.bbox); });
    var added = items.some(function (i) { return i.kind === 'new'; });
    var clashes = overlaps();
    items.forEach(function (i) { i.el.classList.remove('overlap'); });
    clashes.forEach(function (pair) { pair[0].el.classList.add('overlap'); pair[1].el.classList.add('overlap'); });
    if (clashes.length) {
      warning.hidden = false;
      warning.textContent = 'Overlap: ' + clashes.map(function (p) { return name(p[0]) + ' and ' + name(p[1]); }).join('; ') +
        '. A crop would hold part of the next panel; move the boxes apart before saving.';
    } else { warning.hidden = true; warning.textContent = ''; }
    $('save-boxes').disabled = !(moved || added) || !!split || clashes.length > 0;
    $('save-split').disabled = !split || clashes.length > 0;
    $('undo').disabled = history.length === 0;
    $('cancel').disabled = history.length === 0;
    var state = split ? 'Split of ' + name(split.source) + ' into ' + (items.filter(function (i) { return i.kind === 'part'; }).length + 1) + ' parts, not saved yet.'
      : (moved || added) ? 'Moved or new boxes are not saved yet.' : '';
    statusLine.textContent = [note, state].filter(Boolean).join(' ');
    note = '';
  }
  function unsaved() { return history.length > 0; }

  // --- geometry ------------------------------------------------------------------------
  function clamp(b) {
    var x0 = Math.max(0, Math.min(b[0], b[2] - MIN)), y0 = Math.max(0, Math.min(b[1], b[3] - MIN));
    var x1 = Math.min(W, Math.max(b[2], x0 + MIN)), y1 = Math.min(H, Math.max(b[3], y0 + MIN));
    return [round(x0), round(y0), round(x1), round(y1)];
  }
  function moved(item, b) {
    var w = item.bbox[2] - item.bbox[0], h = item.bbox[3] - item.bbox[1];
    var x0 = Math.max(0, Math.min(W - w, b[0])), y0 = Math.max(0, Math.min(H - h, b[1]));
    return [round(x0), round(y0), round(x0 + w), round(y0 + h)];
  }
  function point(e) {
    var r = stage.getBoundingClientRect(), k = W / stage.clientWidth;
    return [Math.max(0, Math.min(W, (e.clientX - r.left) * k)), Math.max(0, Math.min(H, (e.clientY - r.top) * k))];
  }

  // --- dragging, resizing and drawing --------------------------------------------------
  function startDrag(e, item) {
    if (e.button !== 0 || drawing) return;
    e.preventDefault(); e.stopPropagation(); item.el.focus();
    var corner = (e.target.className.match(/h (\w\w)/) || [])[1] || '';
    drag = {item: item, corner: corner, x: e.clientX, y: e.clientY, start: item.bbox.slice(), before: snapshot()};
    item.el.setPointerCapture(e.pointerId);
  }
  stage.addEventListener('pointerdown', function (e) {
    if (!drawing || e.button !== 0) return;
    e.preventDefault();
    var p = point(e);
    drag = {origin: p, before: snapshot(), item: null};
    stage.setPointerCapture(e.pointerId);
  });
  stage.addEventListener('pointermove', function (e) {
    if (!drag) return;
    if (drag.origin) {
      var p = point(e), o = drag.origin;
      var b = [round(Math.min(o[0], p[0])), round(Math.min(o[1], p[1])), round(Math.max(o[0], p[0])), round(Math.max(o[1], p[1]))];
      if (!drag.item) {
        if (b[2] - b[0] < 1 && b[3] - b[1] < 1) return;
        drag.item = make(null, b, 'new');
      }
      drag.item.bbox = b; draw(drag.item); changed();
      return;
    }
    var k = W / stage.clientWidth, dx = (e.clientX - drag.x) * k, dy = (e.clientY - drag.y) * k, s = drag.start, nb;
    if (!drag.corner) nb = moved(drag.item, [s[0] + dx, s[1] + dy]);
    else {
      nb = s.slice();
      if (drag.corner.indexOf('w') >= 0) nb[0] = s[0] + dx; else nb[2] = s[2] + dx;
      if (drag.corner.indexOf('n') >= 0) nb[1] = s[1] + dy; else nb[3] = s[3] + dy;
      nb = clamp(nb);
    }
    drag.item.bbox = nb; draw(drag.item); changed();
  });
  function endDrag() {
    if (!drag) return;
    var d = drag; drag = null;
    if (d.origin) {
      if (!d.item) return;
      var b = d.item.bbox;
      if (b[2] - b[0] < MIN || b[3] - b[1] < MIN) {  // a click, not a box
        items.splice(items.indexOf(d.item), 1); d.item.el.remove(); changed(); return;
      }
      history.push(d.before); d.item.el.focus(); say('New box drawn: save it with w.'); changed();
      return;
    }
    if (!same(d.start, d.item.bbox)) { history.push(d.before); changed(); }
  }
  stage.addEventListener('pointerup', endDrag);
  stage.addEventListener('pointercancel', endDrag);
  function toggleDrawing(on) {
    drawing = on === undefined ? !drawing : on;
    stage.classList.toggle('drawing', drawing);
    $('draw-box').setAttribute('aria-pressed', drawing ? 'true' : 'false');
    say(drawing ? 'Drag on the page to draw a new box.' : ''); changed();
  }

  // --- splitting along the gutter ------------------------------------------------------
  function cutAt(item, vertical, at) {
    var b = item.bbox, first, second;
    var lo = (vertical ? b[0] : b[1]) + MIN, hi = (vertical ? b[2] : b[3]) - MIN;
    at = round(Math.max(lo, Math.min(hi, at)));
    if (vertical) { first = [b[0], b[1], at, b[3]]; second = [at, b[1], b[2], b[3]]; }
    else { first = [b[0], b[1], b[2], at]; second = [b[0], at, b[2], b[3]]; }
    remember();
    if (!split) split = {source: item};
    item.bbox = first; draw(item);
    var part = make(item.row, second, 'part');
    items.splice(items.indexOf(part), 1);
    items.splice(items.indexOf(item) + 1, 0, part);
    changed(); part.el.focus();
  }
  function halve(item, vertical) {
    var b = item.bbox;
    if ((vertical ? b[2] - b[0] : b[3] - b[1]) < 2 * MIN) { say('That box is too small to split.'); changed(); return; }
    if (split && item !== split.source && item.kind !== 'part') { say('Save or undo the split in progress first.'); changed(); return; }
    if (!split) {
      if (item.kind !== 'panel') { say('Save the new box first, then split it.'); changed(); return; }
      if (unsaved()) { say('Save or undo the moved boxes first.'); changed(); return; }
    }
    var middle = vertical ? (b[0] + b[2]) / 2 : (b[1] + b[3]) / 2;
    var url = stage.dataset.gutterUrl + '?box=' + encodeURIComponent(b.join(',')) + '&axis=' + (vertical ? 'v' : 'h');
    say('Looking for the gutter…'); changed();
    fetch(url, {credentials: 'same-origin', headers: {'Accept': 'application/json'}})
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (found) {
        if (!same(item.bbox, b)) return;  // the box moved meanwhile: leave it
        cutAt(item, vertical, found.cut);
        say(found.found ? 'Cut along the white gutter.' : found.message); changed();
      })
      .catch(function () { cutAt(item, vertical, middle); say('Could not look for a gutter; cut in the middle.'); changed(); });
  }
  function focused() {
    if (current && document.activeElement === current.el) return current;
    if (split) return split.source;
    return items.length === 1 ? items[0] : null;
  }
  function doSplit(vertical) {
    var item = focused();
    if (!item) { say('Focus the box to split first (Tab or click).'); changed(); return; }
    halve(item, vertical);
  }

  // --- saving --------------------------------------------------------------------------
  function submit(action) { leaving = true; $('action').value = action; form.submit(); }
  function saveBoxes() {
    if ($('save-boxes').disabled) { if (overlaps().length) say('Boxes overlap: move them apart first.'); changed(); return; }
    $('new_boxes').value = items.filter(function (i) { return i.kind === 'new'; })
      .map(function (i) { return i.bbox.join(','); }).join(';');
    submit('adjust');
  }
  function saveSplit() {
    if (!split || $('save-split').disabled) return;
    var source = split.source;
    $('split_pair').value = source.row.pair;
    $('box_' + source.row.pair).value = source.row.bbox.join(',');
    var all = [source].concat(items.filter(function (i) { return i.kind === 'part'; }));
    all.sort(function (a, b) { return items.indexOf(a) - items.indexOf(b); });
    $('split_boxes').value = all.map(function (i) { return i.bbox.join(','); }).join(';');
    submit('split');
  }
  function toggleMerge(item) {
    if (item.kind !== 'panel') return;
    var cb = $('merge_' + item.row.pair); cb.checked = !cb.checked;
    item.el.classList.toggle('checked', cb.checked);
  }
  document.querySelectorAll('input[name=merge]').forEach(function (cb) {
    cb.addEventListener('change', function () {
      items.forEach(function (i) { if (i.kind === 'panel' && String(i.row.pair) === cb.value) i.el.classList.toggle('checked', cb.checked); });
    });
  });

  // --- crops that finish re-rendering --------------------------------------------------
  function applyCrops() {
    document.querySelectorAll('[data-crop-src]:not([data-applied])').forEach(function (el) {
      el.setAttribute('data-applied', '1');
      document.querySelectorAll('img[data-crop-pair="' + el.dataset.cropPair + '"]').forEach(function (img) {
        img.src = el.dataset.cropSrc + (el.dataset.cropSrc.indexOf('?') < 0 ? '?' : '&') + 'v=' + Date.now();
        var badge = img.parentNode.querySelector('.re-rendering');
        if (badge) badge.remove();
      });
    });
  }
  document.body.addEventListener('htmx:afterSettle', applyCrops);
  document.body.addEventListener('htmx:load', applyCrops);

  // --- wiring --------------------------------------------------------------------------
  $('save-boxes').addEventListener('click', saveBoxes);
  $('save-split').addEventListener('click', saveSplit);
  $('split-v').addEventListener('click', function () { doSplit(true); });
  $('split-h').addEventListener('click', function () { doSplit(false); });
  $('draw-box').addEventListener('click', function () { toggleDrawing(); });
  $('undo').addEventListener('click', undo);
  $('cancel').addEventListener('click', discard);
  var help = $('panel-help');
  $('help-link').addEventListener('click', function (e) { e.preventDefault(); help.classList.toggle('open'); });

  var lastKey = null;  // arrow presses on one box within a second are one undo step
  document.addEventListener('keydown', function (e) {
    var t = e.target;
    if (t.matches && t.matches('input[type=text], textarea, select')) { if (e.key === 'Escape') t.blur(); return; }
    if (e.key === 'Shift' || e.key === 'Control' || e.key === 'Alt' || e.key === 'Meta') return;
    if ((e.ctrlKey || e.metaKey) && !e.shiftKey && (e.key === 'z' || e.key === 'Z')) { e.preventDefault(); undo(); return; }
    var item = items.filter(function (i) { return i.el === t; })[0];
    if (item && e.key.indexOf('Arrow') === 0) {
      e.preventDefault();
      var now = Date.now();
      if (!lastKey || lastKey.item !== item || now - lastKey.at > 1000 || lastKey.shift !== e.shiftKey) remember();
      lastKey = {item: item, at: now, shift: e.shiftKey};
      var step = e.ctrlKey || e.metaKey ? 10 : 2, b = item.bbox.slice();
      var dx = e.key === 'ArrowRight' ? step : e.key === 'ArrowLeft' ? -step : 0;
      var dy = e.key === 'ArrowDown' ? step : e.key === 'ArrowUp' ? -step : 0;
      if (e.shiftKey) { b[2] += dx; b[3] += dy; item.bbox = clamp(b); }
      else item.bbox = moved(item, [b[0] + dx, b[1] + dy]);
      draw(item); changed(); return;
    }
    lastKey = null;
    if (item && e.key === ' ') { e.preventDefault(); toggleMerge(item); return; }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    switch (e.key) {
      case 'v': e.preventDefault(); doSplit(true); break;
      case 'h': e.preventDefault(); doSplit(false); break;
      case 'd': e.preventDefault(); toggleDrawing(); break;
      case 'w': e.preventDefault(); saveBoxes(); break;
      case 'x': e.preventDefault(); saveSplit(); break;
      case 'm': e.preventDefault(); submit('merge'); break;
      case 'b': var back = $('back-link'); if (back) window.location = back.href; break;
      case '?': help.classList.toggle('open'); break;
      case 'Escape':
        if (help.classList.contains('open')) help.classList.remove('open');
        else if (drawing) toggleDrawing(false);
        else discard();
        break;
    }
  });
  form.addEventListener('submit', function () { leaving = true; });
  window.addEventListener('beforeunload', function (e) {
    if (unsaved() && !leaving) { e.preventDefault(); e.returnValue = ''; }
  });

  rows.forEach(function (row) { if (row.pair) make(row, row.bbox, 'panel'); });
  initial = snapshot();
  changed();
  applyCrops();
})();
