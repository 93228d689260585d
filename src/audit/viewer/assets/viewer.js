import { hideDetail } from './detail.js';
import { fail, listView } from './list.js';
import { statusView } from './status.js';
import { timelineView } from './timeline.js';

const main = document.getElementById('main');

/** Shows the view the URL names; links between views change the URL without reloading. */
function route() {
  const params = new URLSearchParams(location.search);
  const view = params.get('view') ?? 'list';
  document.getElementById('error').hidden = true;
  hideDetail(false);
  for (const link of document.querySelectorAll('nav a')) link.removeAttribute('aria-current');
  document.getElementById(view === 'status' ? 'nav-status' : 'nav-list').setAttribute('aria-current', 'page');
  const shown = view === 'status' ? statusView(main) : view === 'entity' ? timelineView(main, params) : listView(main, params, navigate);
  shown.then(() => (document.body.dataset.ready = 'true')).catch(fail);
}

function navigate(href) {
  history.pushState(null, '', href);
  document.body.dataset.ready = 'false';
  route();
  main.focus();
}

document.addEventListener('click', (event) => {
  const link = event.target instanceof Element ? event.target.closest('a[href^="?"]') : null;
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  navigate(link.getAttribute('href'));
});
window.addEventListener('popstate', route);
route();
