/* Site-wide behaviour, loaded on every page (templates hold no inline script). */
(function () {
  'use strict';
  // <select data-autosubmit>: choosing a value submits its form (the review queue filters).
  document.addEventListener('change', function (e) {
    var t = e.target;
    if (t.matches && t.matches('select[data-autosubmit]') && t.form) {
      if (t.form.requestSubmit) t.form.requestSubmit(); else t.form.submit();
    }
  });
  // The skip link moves focus to the page's content, not just its scroll position.
  document.addEventListener('click', function (e) {
    var link = e.target.closest && e.target.closest('a.skip-link');
    if (!link) return;
    var main = document.getElementById(link.getAttribute('href').slice(1));
    if (main) { e.preventDefault(); main.focus(); main.scrollIntoView(); }
  });
})();
