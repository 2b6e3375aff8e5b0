// <time datetime="ISO" class="localtime"> shows the server's UTC text until this runs; then it
// reads in the browser's own time zone, with the UTC instant kept as the tooltip.
(function () {
  'use strict';
  var format = new Intl.DateTimeFormat(undefined, {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit'
  });
  function localise(root) {
    var times = (root || document).querySelectorAll('time.localtime[datetime]:not([data-local])');
    Array.prototype.forEach.call(times, function (el) {
      var moment = new Date(el.getAttribute('datetime'));
      if (isNaN(moment.getTime())) return;
      el.title = el.textContent;
      el.textContent = format.format(moment);
      el.dataset.local = '1';
    });
  }
  if (window.mmLocalTime) { localise(document); return; }
  window.mmLocalTime = localise;
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', function () { localise(document); });
  } else {
    localise(document);
  }
  document.addEventListener('htmx:afterSettle', function (event) { localise(event.target); });
})();
