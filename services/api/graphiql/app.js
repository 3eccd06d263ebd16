// Boots GraphiQL against the PIoT API. This lives in its own file rather than
// inline in index.html so the page's Content-Security-Policy can forbid
// inline script; the endpoint and login path arrive as data- attributes on
// <body> for the same reason.
(function () {
  'use strict';

  var TOKEN_KEY = 'piot.token';

  var endpoint = document.body.dataset.endpoint;
  var loginPath = document.body.dataset.loginPath;

  var form = document.getElementById('login-form');
  var emailInput = document.getElementById('login-email');
  var passwordInput = document.getElementById('login-password');
  var loginButton = document.getElementById('login-button');
  var logoutButton = document.getElementById('logout-button');
  var status = document.getElementById('auth-status');

  // localStorage throws rather than returning null when storage is disabled.
  function getToken() {
    try {
      return localStorage.getItem(TOKEN_KEY);
    } catch (e) {
      return null;
    }
  }

  function setStatus(text, isError) {
    status.textContent = text;
    status.classList.toggle('error', !!isError);
  }

  function showAuthState() {
    var loggedIn = !!getToken();
    form.hidden = loggedIn;
    logoutButton.hidden = !loggedIn;
    setStatus(loggedIn ? 'Logged in.' : 'Not logged in: queries are sent without a token.');
  }

  // The token is read per request, so logging in or out takes effect on the
  // next query without reloading. Headers typed into GraphiQL's header editor
  // are applied last, so a different token can be tried by hand.
  async function fetcher(graphQLParams, opts) {
    var headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
    var token = getToken();
    if (token) {
      headers.Authorization = 'Bearer ' + token;
    }
    Object.assign(headers, (opts && opts.headers) || {});
    var res = await fetch(endpoint, {
      method: 'POST',
      headers: headers,
      body: JSON.stringify(graphQLParams),
      credentials: 'same-origin',
    });
    var text = await res.text();
    try {
      return JSON.parse(text);
    } catch (e) {
      // Surface non-JSON failures (proxy errors, plain-text 401s) in the
      // result pane instead of GraphiQL's opaque parse error.
      return { errors: [{ message: 'HTTP ' + res.status + ': ' + text }] };
    }
  }

  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  var generation = 0;

  // A new key remounts GraphiQL, which re-runs schema introspection: the
  // schema fetched before login was likely rejected as unauthorized.
  function renderGraphiQL() {
    generation++;
    root.render(
      React.createElement(GraphiQL, {
        key: generation,
        fetcher: fetcher,
        defaultEditorToolsVisibility: true,
      })
    );
  }

  form.addEventListener('submit', async function (ev) {
    ev.preventDefault();
    loginButton.disabled = true;
    setStatus('Logging in…');
    try {
      var res = await fetch(loginPath, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ email: emailInput.value, password: passwordInput.value }),
        credentials: 'same-origin',
      });
      var data = null;
      try {
        data = await res.json();
      } catch (e) {
        // Non-JSON body: reported below from the status code.
      }
      if (!res.ok || !data || typeof data.token !== 'string' || data.token === '') {
        var reason = (data && (data.error || data.message)) || 'HTTP ' + res.status;
        throw new Error('Login failed: ' + reason);
      }
      localStorage.setItem(TOKEN_KEY, data.token);
      passwordInput.value = '';
      showAuthState();
      renderGraphiQL();
    } catch (e) {
      setStatus(e.message, true);
    } finally {
      loginButton.disabled = false;
    }
  });

  logoutButton.addEventListener('click', function () {
    try {
      localStorage.removeItem(TOKEN_KEY);
    } catch (e) {
      // Storage disabled: there was no token to remove.
    }
    showAuthState();
    renderGraphiQL();
  });

  // Keep tabs in step when another tab logs in or out.
  window.addEventListener('storage', function (ev) {
    if (ev.key === TOKEN_KEY || ev.key === null) {
      showAuthState();
      renderGraphiQL();
    }
  });

  showAuthState();
  renderGraphiQL();
})();
