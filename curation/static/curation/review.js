/* The pair review page: keyboard shortcuts, crop zoom/pan, page view, reject check, Undo
   toast and the help dialog. The pair itself (#pair) is swapped in place by htmx after every
   decision, so handlers are bound once on the document and per-pair set-up runs on each swap
   (htmx.onLoad). No inline script: the page works under a strict Content-Security-Policy. */
(function () {
  'use strict';
  var view = { scale: 1, x: 0, y: 0, drag: null, img: null, viewer: null };
  var toastTimer = null, prefetched = [], lastFocus = null;

  function $(id) { return document.getElementById(id); }
  function form() { return $('review-form'); }
  function readonly() { var f = form(); return !f || f.dataset.readonly === '1'; }

  // --- crop zoom and pan ---------------------------------------------------------------
  function apply() {
    if (!view.img) return;
    view.img.style.transform = 'translate(' + view.x + 'px,' + view.y + 'px) scale(' + view.scale + ')';
    view.img.dataset.scale = view.scale.toFixed(3);
  }
  function fit() {
    var v = view.viewer, img = view.img;
    if (!v || !img || !img.naturalWidth || !v.clientWidth) return;
    var s = Math.min(v.clientWidth / img.naturalWidth, v.clientHeight / img.naturalHeight);
    view.scale = s;
    view.x = (v.clientWidth - img.naturalWidth * s) / 2;
    view.y = (v.clientHeight - img.naturalHeight * s) / 2;
    apply();
  }
  function zoom(f, cx, cy) {
    var v = view.viewer; if (!v) return;
    cx = cx === undefined ? v.clientWidth / 2 : cx; cy = cy === undefined ? v.clientHeight / 2 : cy;
    view.x = cx - (cx - view.x) * f; view.y = cy - (cy - view.y) * f; view.scale *= f; apply();
  }
  function initViewer() {
    view.viewer = $('viewer'); view.img = $('crop'); view.drag = null;
    if (!view.viewer || !view.img) return;
    if (view.img.complete) fit(); else view.img.addEventListener('load', fit);
    view.viewer.addEventListener('wheel', function (e) {
      e.preventDefault();
      var r = view.viewer.getBoundingClientRect();
      zoom(e.deltaY < 0 ? 1.2 : 1 / 1.2, e.clientX - r.left, e.clientY - r.top);
    }, { passive: false });
    view.viewer.addEventListener('mousedown', function (e) { view.drag = [e.clientX - view.x, e.clientY - view.y]; });
  }
  window.addEventListener('mouseup', function () { view.drag = null; });
  window.addEventListener('mousemove', function (e) {
    if (view.drag) { view.x = e.clientX - view.drag[0]; view.y = e.clientY - view.drag[1]; apply(); }
  });
  window.addEventListener('resize', fit);

  // --- the page the figure comes from, scrolled to its box ---------------------------------
  function initPageBoxes() {
    document.querySelectorAll('#pageview rect[data-box]').forEach(function (r) {
      var b = r.dataset.box.split(',').map(Number);
      r.setAttribute('x', b[0]); r.setAttribute('y', b[1]);
      r.setAttribute('width', b[2] - b[0]); r.setAttribute('height', b[3] - b[1]);
    });
  }
  function scrollToFigure() {
    var pv = $('pageview'); if (!pv) return;
    var inner = pv.querySelector('.page-inner'), box = (pv.dataset.figureBox || '').split(',').map(Number);
    var height = Number(pv.dataset.pageHeight) || 0;
    if (!inner || !height || box.length < 4) return;
    var top = box[1] / height * inner.clientHeight;
    pv.scrollTop = Math.max(0, top - 16);
  }
  function showTab(which) {
    var pv = $('pageview'), v = $('viewer');
    if (!pv || !v) return;
    var page = which === 'page';
    pv.hidden = !page; v.hidden = page;
    $('tab-page').setAttribute('aria-selected', String(page));
    $('tab-crop').setAttribute('aria-selected', String(!page));
    if (page) {
      var img = pv.querySelector('img');
      img.loading = 'eager';
      if (img.complete && img.naturalWidth) scrollToFigure(); else img.addEventListener('load', scrollToFigure, { once: true });
    } else { fit(); }
  }

  // --- decisions -------------------------------------------------------------------------
  function rejectProblem() {
    var reason = $('id_reason'), note = $('id_note');
    if (!reason.value) return [reason, 'Choose a reason for rejecting.'];
    if (reason.value === 'other' && !note.value.trim()) return [note, "Explain the reason when it is 'other'."];
    return null;
  }
  function submitAs(action) {
    var f = form();
    if (!f || readonly() || f.classList.contains('htmx-request')) return;
    if (action === 'reject') {
      openReject();
      var problem = rejectProblem(), msg = $('reject-error');
      if (problem) { msg.textContent = problem[1]; msg.hidden = false; problem[0].focus(); return; }
      msg.hidden = true;
    }
    $('action').value = action;
    // A key pressed the instant a pair arrives must still go through htmx, not reload.
    if (window.htmx) htmx.process(f);
    if (f.requestSubmit) f.requestSubmit(); else f.submit();
  }
  function openReject() {
    if (readonly()) return;
    $('reject-panel').classList.add('open');
    $('id_reason').focus();
  }
  function closeReject() { var p = $('reject-panel'); if (p) p.classList.remove('open'); }

  // --- help dialog: modal, traps focus, Esc closes ----------------------------------------
  function help() { return $('help'); }
  function openHelp() {
    var d = help(); if (!d || d.open) return;
    lastFocus = document.activeElement;
    d.showModal();
    $('help-close').focus();
  }
  function closeHelp() { var d = help(); if (d && d.open) d.close(); }
  function trapTab(e) {
    var d = help();
    var items = Array.prototype.filter.call(
      d.querySelectorAll('button, [href], input, select, textarea, [tabindex]:not([tabindex="-1"])'),
      function (el) { return !el.disabled; });
    if (!items.length) { e.preventDefault(); return; }
    var first = items[0], last = items[items.length - 1];
    if (e.shiftKey && (document.activeElement === first || !d.contains(document.activeElement))) { e.preventDefault(); last.focus(); }
    else if (!e.shiftKey && (document.activeElement === last || !d.contains(document.activeElement))) { e.preventDefault(); first.focus(); }
  }
  document.addEventListener('close', function (e) {
    if (e.target === help() && lastFocus && document.contains(lastFocus)) lastFocus.focus();
  }, true);

  // --- the toast after a decision: Undo for 5 s ------------------------------------------
  function initToast() {
    var t = $('toast');
    if (toastTimer) { clearTimeout(toastTimer); toastTimer = null; }
    if (!t || t.hidden) return;
    toastTimer = setTimeout(function () { t.hidden = true; }, Number(t.dataset.timeout) || 5000);
  }
  function showMessage(text) {
    var t = $('toast'); if (!t) return;
    t.textContent = text; t.classList.add('toast-error'); t.hidden = false; initToast();
  }

  function follow(id) {
    var a = $(id); if (!a) return;
    if (a.hasAttribute('hx-get') && window.htmx) a.click(); else window.location = a.href;
  }

  // --- per pair, on load and after every swap -------------------------------------------
  function initPair() {
    var root = $('pair'); if (!root) return;
    document.title = 'Review pair ' + root.dataset.pair + ' · MM-Skin curation';
    initPageBoxes(); initViewer(); initToast();
    prefetchNext(root);
  }
  // The next pair's crop, then the page it sits on, fetched ahead so that its swap shows them
  // at once. The page image waits for this pair's own crop, which matters more.
  function prefetchNext(root) {
    var urls = [root.dataset.nextCrop, root.dataset.nextPage].filter(Boolean);
    prefetched = [];
    function fetchAll() {
      urls.forEach(function (u) { var im = new Image(); im.decoding = 'async'; im.src = u; prefetched.push(im); });
    }
    var own = $('crop');
    if (!own || own.complete) fetchAll();
    else { own.addEventListener('load', fetchAll, { once: true }); own.addEventListener('error', fetchAll, { once: true }); }
  }
  if (window.htmx) {
    htmx.onLoad(function (elt) { if (elt.id === 'pair' || elt === document.body || elt.querySelector && elt.querySelector('#pair')) initPair(); });
    // htmx gives focus back to an element with the same id after a swap; when the swap
    // brings another pair (it says so with HX-Push-Url) the keys must reach the page, not
    // the new pair's text field, so focus leaves the old one first.
    document.body.addEventListener('htmx:beforeSwap', function (e) {
      var a = document.activeElement, root = $('pair');
      if (e.detail.xhr.getResponseHeader('HX-Push-Url') && a && root && root.contains(a)) a.blur();
    });
    document.body.addEventListener('htmx:responseError', function (e) {
      showMessage('The server could not do that (' + e.detail.xhr.status + '). Nothing changed on this page; try again.');
    });
    document.body.addEventListener('htmx:sendError', function () {
      showMessage('The server cannot be reached. Nothing was saved; try again.');
    });
  } else {
    document.addEventListener('DOMContentLoaded', initPair);
  }

  // --- clicks (delegated: the buttons are new after each swap) ---------------------------
  document.addEventListener('click', function (e) {
    var t = e.target.closest ? e.target.closest('button, a') : null;
    if (!t) return;
    if (t.dataset.action) { e.preventDefault(); submitAs(t.dataset.action); }
    else if (t.dataset.open === 'reject') { e.preventDefault(); openReject(); }
    else if (t.id === 'help-open') { e.preventDefault(); openHelp(); }
    else if (t.id === 'tab-page') { showTab('page'); }
    else if (t.id === 'tab-crop') { showTab('crop'); }
  });

  // --- keyboard ---------------------------------------------------------------------------
  document.addEventListener('keydown', function (e) {
    var d = help();
    if (d && d.open) {
      if (e.key === 'Tab') trapTab(e);
      else if (e.key === 'Escape') { e.preventDefault(); closeHelp(); }
      else if (e.key === '?') { e.preventDefault(); closeHelp(); }
      return;
    }
    if (!$('pair')) return;
    var t = e.target, typing = t.matches && t.matches('input[type=text], input[type=number], textarea, select');
    if (e.key === 'Escape') { if (t.blur) t.blur(); closeReject(); return; }
    if (typing) {
      var inReject = t.closest('#reject-panel');
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); submitAs(inReject ? 'reject' : 'accept'); }
      else if (e.key === 'Enter' && inReject) { e.preventDefault(); submitAs('reject'); }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var radio = document.querySelector('input[name=modality][data-key="' + e.key + '"]');
    if (radio && !readonly()) { radio.checked = true; e.preventDefault(); return; }
    switch (e.key) {
      case 'a': e.preventDefault(); submitAs('accept'); break;
      case 'e': e.preventDefault(); var ta = $('id_text'); if (ta && !ta.disabled) { ta.focus(); ta.setSelectionRange(ta.value.length, ta.value.length); } break;
      case 'r': e.preventDefault(); openReject(); break;
      case 's': e.preventDefault(); submitAs('skip'); break;
      case 'u': var undo = $('undo-btn'); if (undo && !$('toast').hidden) { e.preventDefault(); undo.click(); } break;
      case 'n': follow('next-link'); break;
      case 'p': follow('prev-link'); break;
      case 'f': follow('fix-panels'); break;
      case 'c': follow('change-decision'); break;
      case 'g': showTab($('pageview') && $('pageview').hidden ? 'page' : 'crop'); break;
      case 'm': var m = $('mentions'); if (m) m.open = !m.open; break;
      case '+': case '=': zoom(1.25); break;
      case '-': zoom(0.8); break;
      case '0': fit(); break;
      case '?': e.preventDefault(); openHelp(); break;
    }
  });
})();
