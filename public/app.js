// Progressive enhancement for the blog's pages. Everything works without it;
// with it, publishing or saving an edit never leaves the form when the server
// cannot be reached, unsent text survives a reload (or a trip to sign in),
// and a page marked stale reloads itself once the region has caught up.
// Served from /static (CSP script-src 'self').
'use strict';

/** How long "Publish" waits for an answer before telling the author. */
const PUBLISH_TIMEOUT_MS = 20000;
/** How often a stale page asks whether the region has caught up. */
const STALE_CHECK_MS = 1500;
/** Stop asking after this long: by then the token has long expired (RYW_TTL_S). */
const STALE_CHECK_FOR_MS = 5 * 60 * 1000;
/** A new article's draft; an edit's is this plus the article's path (`litefs-blog:draft:/articles/7`). */
const DRAFT_KEY = 'litefs-blog:draft';
/** The cookie that tells the server a stale page is being reloaded because its region caught up (CAUGHT_UP_COOKIE in src/http/notice.ts). */
const CAUGHT_UP_COOKIE = 'ryw-caught-up';

function draftKey(form) {
  const path = new URL(form.action, window.location.href).pathname;
  return path === '/new' ? DRAFT_KEY : `${DRAFT_KEY}:${path}`;
}

/** What the button says: "Publish" for a new article, "Save changes" for an edit. */
function verb(form) {
  const button = form.querySelector('button[type=submit]');
  // While a save is on its way the button says "Publishing…": name what the author presses.
  return (button.dataset.idleLabel ?? button.textContent).trim();
}

document.addEventListener('DOMContentLoaded', () => {
  const form = document.querySelector('form.editor');
  if (form) enhanceEditor(form);
  else if (document.body.dataset.ryw === 'stale') watchStale();
});

// --- The editor --------------------------------------------------------------

function enhanceEditor(form) {
  restoreDraft(form);
  let saveTimer = 0;
  form.addEventListener('input', () => {
    clearTimeout(saveTimer);
    saveTimer = setTimeout(() => saveDraft(form), 250);
  });
  let sending = false;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    // A second press while the first is on its way would only be deduplicated
    // by the server (the draft id); not sending it is kinder to everyone.
    if (sending) return;
    sending = true;
    saveDraft(form);
    const button = form.querySelector('button[type=submit]');
    const label = button.textContent;
    button.dataset.idleLabel = label;
    button.disabled = true;
    button.textContent = form.elements._revision ? 'Saving…' : 'Publishing…';
    form.setAttribute('aria-busy', 'true');
    try {
      await publish(form);
    } finally {
      sending = false;
      button.disabled = false;
      button.textContent = label;
      delete button.dataset.idleLabel;
      form.removeAttribute('aria-busy');
    }
  });
}

async function publish(form) {
  let res;
  try {
    res = await fetch(form.action, {
      method: 'POST',
      body: new URLSearchParams(new FormData(form)),
      headers: { Accept: 'application/json' },
      credentials: 'same-origin',
      // Older browsers lack AbortSignal.timeout: they wait as long as the server does.
      signal: typeof AbortSignal.timeout === 'function' ? AbortSignal.timeout(PUBLISH_TIMEOUT_MS) : undefined,
    });
  } catch (err) {
    const timedOut = err && err.name === 'TimeoutError';
    const again = verb(form);
    showProblem(
      form,
      timedOut
        ? form.elements._revision
          ? `The server did not answer in time, so your changes may or may not be saved. Your text is still here: press ${again} again. Saving the same text twice changes nothing.`
          : `The server did not answer in time, so your article may or may not be published. Your text is still here: press ${again} again. It will not be published twice.`
        : `Your text could not be sent: the connection to the server failed. Nothing was lost: your text is still here. Press ${again} again in a moment.`,
    );
    return;
  }
  const type = res.headers.get('content-type') || '';
  if (res.ok && type.includes('application/json')) {
    const body = await res.json();
    forgetDraft(form);
    window.location.assign(body.url);
    return;
  }
  if (!res.ok && type.includes('application/json')) {
    // The app refused the article and said why (a 503 when the database could
    // not commit it: nothing was saved). The form stays as typed, with its
    // draft id, and the draft stays in the tab until a publish succeeds.
    const body = await res.json().catch(() => null);
    // An edit saved but not yet confirmed elsewhere (503) names the revision it
    // saved: the next save starts from it, not a conflict with the author's own.
    if (body && Number.isInteger(body.revision) && form.elements._revision) {
      form.elements._revision.value = String(body.revision);
      saveDraft(form);
    }
    if (body && typeof body.message === 'string') {
      showProblem(
        form,
        /your text is still here/i.test(body.message) ? body.message : `${body.message} Nothing was lost: your text is still here.`,
      );
      return;
    }
  }
  if (type.includes('text/html')) {
    // The app answered with the form again (a field to fix, an expired form, a
    // conflict): show it as it would have been shown without this script.
    const page = new DOMParser().parseFromString(await res.text(), 'text/html');
    const next = page.querySelector('form.editor');
    if (next) {
      form.replaceWith(next);
      enhanceEditor(next);
      saveDraft(next);
      const focus = next.querySelector('[aria-invalid=true]') || next.querySelector('.form-status');
      if (focus) {
        if (!focus.matches('input, textarea')) focus.tabIndex = -1;
        focus.focus();
      }
      return;
    }
  }
  // Anything else came from something between the browser and the app (the
  // edge could not reach the primary, a timeout, a proxy's error page).
  showProblem(
    form,
    `Your text was not saved: the server could not be reached just now (${res.status} ${res.statusText || 'error'}). ` +
      `Nothing was lost: your text is still here. Press ${verb(form)} again in a moment.`,
  );
}

function showProblem(form, message) {
  const status = form.querySelector('.form-status');
  const p = document.createElement('p');
  p.className = 'problem';
  p.textContent = message;
  status.replaceChildren(p);
  status.tabIndex = -1;
  status.focus();
}

// Drafts live in sessionStorage: per tab, gone with it, never sent anywhere.
// A new article's draft id goes with its text, so that publishing a restored
// draft whose first publish did go through finds that article instead of
// making a second; an edit's revision goes with its text, so that saving a
// restored edit over a newer version is refused (409) with both shown.

function saveDraft(form) {
  const { title, content, _draft, _revision } = form.elements;
  const data = {
    title: title.value,
    content: content.value,
    draft: _draft ? _draft.value : '',
    revision: _revision ? _revision.value : '',
  };
  try {
    if (data.title === '' && data.content === '') sessionStorage.removeItem(draftKey(form));
    else sessionStorage.setItem(draftKey(form), JSON.stringify(data));
  } catch {
    // Storage full or disabled: the form still works, only without the backup.
  }
}

function restoreDraft(form) {
  const { title, content, _draft, _revision } = form.elements;
  let saved = null;
  try {
    saved = JSON.parse(sessionStorage.getItem(draftKey(form)) || 'null');
  } catch {
    return;
  }
  if (!saved || typeof saved.title !== 'string' || typeof saved.content !== 'string') return;
  if (_revision) {
    // An edit: the form holds the article as saved, or the text the server
    // sent back; a different draft is unsent work, with the revision it began at.
    if (saved.title === title.value && saved.content === content.value) return;
    if (typeof saved.revision === 'string' && saved.revision !== '') _revision.value = saved.revision;
  } else {
    if (title.value !== '' || content.value !== '') return; // the server's copy wins
    if (typeof saved.draft === 'string' && saved.draft !== '' && _draft) _draft.value = saved.draft;
  }
  title.value = saved.title;
  content.value = saved.content;
  const note = document.createElement('p');
  note.className = 'info';
  note.textContent = _revision ? 'Your unsaved changes from before were restored.' : 'Your unsent text from before was restored.';
  form.querySelector('.form-status').replaceChildren(note);
}

function forgetDraft(form) {
  try {
    sessionStorage.removeItem(draftKey(form));
  } catch {
    // Nothing to forget.
  }
}

// --- Stale pages ---------------------------------------------------------------

/**
 * Asks for this page again (HEAD: headers only) until the app no longer marks
 * it stale, then reloads it, so the notice goes away by itself once the
 * author's change has reached this region.
 */
function watchStale() {
  const until = Date.now() + STALE_CHECK_FOR_MS;
  const check = async () => {
    if (Date.now() > until) return;
    try {
      const res = await fetch(window.location.href, { method: 'HEAD', cache: 'no-store', credentials: 'same-origin' });
      const decision = /(?:^|,\s*)ryw;desc="?([a-z]+)/.exec(res.headers.get('server-timing') || '');
      // Anything but stale (or a 503 to wait out) means the page is current now.
      if (decision && decision[1] !== 'stale' && decision[1] !== 'unavailable') {
        // The page reloaded into says the change has arrived, in the same slot
        // as this notice, so nothing moves (src/http/notice.ts).
        const secure = window.location.protocol === 'https:' ? '; Secure' : '';
        document.cookie = `${CAUGHT_UP_COOKIE}=${encodeURIComponent(window.location.pathname + window.location.search)}; Path=/; Max-Age=60; SameSite=Lax${secure}`;
        window.location.reload();
        return;
      }
    } catch {
      // Offline for a moment: try again on the next tick.
    }
    setTimeout(check, STALE_CHECK_MS);
  };
  setTimeout(check, STALE_CHECK_MS);
}
