// The VQA review page, keyboard first. j/k move between question cards, a accepts, e edits
// the answer, r opens the reject reasons (Enter rejects), Ctrl+Enter saves from a field,
// n/p go to the next/previous image. With htmx each decision swaps only its card, so the
// cards keep their order and the page its scroll position; focus moves to the next card
// still waiting for a decision.
(function () {
  'use strict';
  if (window.mmVqa) return;
  window.mmVqa = true;
  document.documentElement.classList.add('vqa-js');

  var currentId = null;
  var pendingId = null;

  function cards() { return Array.prototype.slice.call(document.querySelectorAll('#cards form.item')); }
  function drafted(card) { return card.dataset.status === 'drafted'; }

  function focusCard(card, scroll) {
    var all = cards();
    all.forEach(function (c) { c.classList.toggle('focused', c === card); });
    currentId = card ? card.id : null;
    if (card && scroll !== false) card.scrollIntoView({ block: 'nearest' });
  }

  function current() {
    var card = currentId && document.getElementById(currentId);
    return card && card.matches('#cards form.item') ? card : null;
  }

  function move(step) {
    var all = cards();
    if (!all.length) return;
    var i = all.indexOf(current());
    focusCard(all[(i + step + all.length) % all.length]);
  }

  function nextWaiting(fromId) {
    var all = cards();
    var start = Math.max(0, all.findIndex(function (c) { return c.id === fromId; }));
    for (var k = 1; k <= all.length; k++) {
      var card = all[(start + k) % all.length];
      if (drafted(card)) return card;
    }
    return null;
  }

  function updateDone() {
    var done = document.getElementById('all-done');
    if (!done) return;
    var all = cards();
    done.hidden = !all.length || all.some(drafted);
  }

  function openReject(card) {
    card.classList.add('rejecting');
    var opener = card.querySelector('button.reject');
    if (opener) opener.setAttribute('aria-expanded', 'true');
    card.querySelector('select[name=reason]').focus();
  }

  function closeReject(card) {
    card.classList.remove('rejecting');
    var opener = card.querySelector('button.reject');
    if (opener) opener.setAttribute('aria-expanded', 'false');
  }

  // A click on the button submits with its name/value (action=accept|reject), with htmx or not.
  function decide(card, action) {
    var button = card.querySelector('button[name=action][value=' + action + ']');
    if (button) button.click();
  }

  function go(id) {
    var link = document.getElementById(id);
    if (link) window.location.assign(link.href);
  }

  document.addEventListener('click', function (event) {
    var opener = event.target.closest && event.target.closest('#cards button.reject');
    if (opener) { event.preventDefault(); openReject(opener.closest('form.item')); }
  });

  document.addEventListener('focusin', function (event) {
    var card = event.target.closest && event.target.closest('#cards form.item');
    if (card && card.id !== currentId) focusCard(card, false);
  });

  document.addEventListener('keydown', function (event) {
    var t = event.target;
    var typing = t.matches && t.matches('input:not([type=hidden]), textarea, select');
    var card = current();
    if (event.key === 'Escape') {
      if (t.blur) t.blur();
      if (card) closeReject(card);
      return;
    }
    if (typing) {
      var own = t.closest('#cards form.item');
      if (!own) return;
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) { event.preventDefault(); decide(own, 'accept'); }
      else if (event.key === 'Enter' && t.matches('select')) { event.preventDefault(); decide(own, 'reject'); }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    switch (event.key) {
      case 'j': move(1); break;
      case 'k': move(-1); break;
      // a and r decide waiting cards only: a decided card changes through its buttons.
      case 'a': if (card && drafted(card)) { event.preventDefault(); decide(card, 'accept'); } break;
      case 'e':
        if (card) {
          event.preventDefault();
          var answer = card.querySelector('textarea[name=answer]');
          answer.focus();
          answer.setSelectionRange(answer.value.length, answer.value.length);
        }
        break;
      case 'r': if (card && drafted(card)) { event.preventDefault(); openReject(card); } break;
      case 'n': event.preventDefault(); go('next-link'); break;
      case 'p': event.preventDefault(); go('prev-link'); break;
    }
  });

  // A refusal (invalid, too long, held by someone else) comes back as the card or the add
  // form with its error, a stale decision as the conflict card (HX-Reselect): show them in
  // place. A whole error page (say a lost session) is not swapped into a card.
  document.addEventListener('htmx:beforeSwap', function (event) {
    var xhr = event.detail.xhr;
    if (xhr.status < 400 || xhr.status >= 500) return;
    var fragment = !/^\s*<!doctype/i.test(xhr.responseText);
    if (fragment || xhr.getResponseHeader('HX-Reselect')) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.addEventListener('htmx:beforeRequest', function (event) {
    var elt = event.detail.elt;
    pendingId = elt && elt.id ? elt.id : null;
  });

  document.addEventListener('htmx:afterSettle', function () {
    var id = pendingId;
    pendingId = null;
    updateDone();
    if (!id) return;
    var card = document.getElementById(id);
    if (id === 'add-form') {
      var error = card && card.querySelector('[role=alert]');
      if (error) card.querySelector('textarea[name=question]').focus();
      return;
    }
    if (!card) {  // replaced by the conflict
      var conflict = document.getElementById('conflict');
      if (conflict) conflict.scrollIntoView({ block: 'nearest' });
      return;
    }
    if (card.querySelector('.item-error')) {
      focusCard(card);
      var field = card.classList.contains('rejecting') ? card.querySelector('select[name=reason]')
        : card.querySelector('textarea[name=answer]');
      if (field) field.focus();
      return;
    }
    // htmx put the focus back into the swapped card's field: move it to the next question,
    // so the next key press is a shortcut, not a letter typed into the decided card.
    var next = nextWaiting(id);
    if (next) { focusCard(next); next.focus({ preventScroll: true }); return; }
    focusCard(card, false);
    var link = document.getElementById('next-link');
    if (link) link.focus();
  });

  function start() {
    var all = cards();
    var first = all.find(drafted) || all[0];
    if (first) focusCard(first, false);
    updateDone();
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
