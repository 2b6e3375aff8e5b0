// "Revert to this…" opens its confirmation <dialog>; the dialog's Cancel closes it without
// script (formmethod="dialog"). Delegated, so history swapped in by htmx works as well.
(function () {
  'use strict';
  if (window.mmHistoryDialogs) return;
  window.mmHistoryDialogs = true;
  document.addEventListener('click', function (event) {
    var opener = event.target.closest && event.target.closest('button[data-dialog]');
    if (!opener) return;
    var dialog = document.getElementById(opener.dataset.dialog);
    if (dialog && typeof dialog.showModal === 'function' && !dialog.open) {
      event.preventDefault();
      dialog.showModal();
      var confirm = dialog.querySelector('.confirm-revert');
      if (confirm) confirm.focus();
    }
  });
})();
