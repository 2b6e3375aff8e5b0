// "Revert to this…" opens its confirmation as a modal <dialog> (without script it opens as a
// popover). Cancel closes either. Delegated, so history swapped in by htmx works as well.
(function () {
  'use strict';
  if (window.mmHistoryDialogs) return;
  window.mmHistoryDialogs = true;
  document.addEventListener('click', function (event) {
    var cancel = event.target.closest && event.target.closest('dialog[open] .cancel-revert');
    if (cancel) { event.preventDefault(); cancel.closest('dialog').close(); return; }
    var opener = event.target.closest && event.target.closest('button[data-dialog]');
    if (!opener) return;
    var dialog = document.getElementById(opener.dataset.dialog);
    if (dialog && typeof dialog.showModal === 'function' && !dialog.open) {
      event.preventDefault();  // not the popover: a modal dialog keeps focus inside it
      dialog.showModal();
      var confirm = dialog.querySelector('.confirm-revert');
      if (confirm) confirm.focus();
    }
  });
})();
