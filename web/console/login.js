// trustgate console: signing in and out (the login form of index.html and the log-out button).
import { t } from '/common/i18n.js';
import { $ } from '/common/dom.js';
import { api, clearError, showError } from '/console/app.js';

// Wire the form and the button once: signedIn(who) runs after the server accepted a user and
// password (who: {user, role, csrf}), signedOut() after logging out (whether or not the server
// answered: the page forgets the session either way).
export function initLogin({ signedIn, signedOut }) {
  $('#login').addEventListener('submit', async (e) => {
    e.preventDefault();
    const btn = $('#login-submit');
    btn.disabled = true;
    try {
      const who = await api('POST', '/console/api/login', { user: $('#login-user').value.trim(), password: $('#login-password').value });
      clearError();
      $('#login-password').value = '';
      signedIn(who);
    } catch (err) {
      showError(err instanceof TypeError ? t('err.network') : err.message);
    } finally { btn.disabled = false; }
  });
  $('#logout').addEventListener('click', async () => {
    try { await api('POST', '/console/api/logout', {}); } catch { /* logged out anyway */ }
    clearError();
    history.replaceState(null, '', location.pathname);  // the next user starts on their default view
    signedOut();
  });
}

// Show the form, the caret in the user name; or hide it.
export function showLoginForm() {
  $('#login').hidden = false;
  $('#login-user').focus();
}
export function hideLoginForm() { $('#login').hidden = true; }
