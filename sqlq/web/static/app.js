// sqlq dashboard: keeps the parts of a page marked data-live up to date by re-fetching
// their HTML (built and escaped by the server) every data-every milliseconds, and asks
// before the forms marked data-confirm are sent. No other script, nothing from elsewhere.
'use strict';

function refresh(element) {
  const every = parseInt(element.dataset.every || '2000', 10);
  let busy = false;
  async function tick() {
    if (busy || document.hidden) {
      return;
    }
    busy = true;
    try {
      const response = await fetch(element.dataset.live, {
        headers: {Accept: 'text/html'}, cache: 'no-store', credentials: 'same-origin'});
      if (response.ok) {
        const html = await response.text();
        if (element.dataset.last !== html) {
          element.innerHTML = html;
          element.dataset.last = html;
        }
        document.body.classList.remove('offline');
      } else {
        document.body.classList.add('offline');
      }
    } catch (error) {
      document.body.classList.add('offline');
    } finally {
      busy = false;
    }
  }
  setInterval(tick, every);
}

document.addEventListener('submit', function (event) {
  const form = event.target;
  if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

document.addEventListener('DOMContentLoaded', function () {
  document.querySelectorAll('[data-live]').forEach(refresh);
});
