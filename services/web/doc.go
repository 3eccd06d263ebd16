// Package web is the appliance's web manager: server-rendered pages at
// "/" over core, beside the GraphQL API (services/api) and the console
// (tui). Every page calls core as the signed-in actor, so core's
// authorization applies unchanged; the pages decide nothing but what to
// show (Actor.IsAdministrator for the admin navigation).
//
// Sessions are the API's own tokens (api.Tokens, built once by the
// composition root) in an HttpOnly, SameSite=Strict cookie, Secure over
// TLS. Every request other than GET and HEAD passes page's checks: the
// Origin/Referer, when sent, must be this host, and the form token (field
// "csrf" or header X-CSRF-Token), an HMAC of the token's jti, must match.
// Signing out revokes the jti in core. Every answer carries a
// Content-Security-Policy that allows only the appliance's own script and
// style files: no inline script, style or event handler.
//
// # How to add a page
//
//  1. Template: templates/<name>.html defines "content" (the layout gives
//     the header, navigation, org switcher and notices). Use only
//     html/template's escaping: no template.HTML of anything a user or a
//     device wrote, no inline <script>, style="" or on…= attributes (the
//     CSP refuses them); behaviour goes into static/app.js, keyed on
//     data-* attributes. Every POST form carries
//     <input type="hidden" name="csrf" value="{{.CSRF}}">; a destructive
//     one adds data-confirm="…" for the confirmation dialog. Tables give
//     their cells data-label="…" so they stack on a phone.
//  2. Handler: func (s *Server) thingList(w http.ResponseWriter, r
//     *http.Request, sess *session) in a file of its own (things.go). It
//     reads and changes through core only, as sess.actor, e.g.
//     s.deps.Core.Things(sess.actor, q). Whatever core refuses goes to
//     s.fail(w, r, sess, err), the one place core's error codes become an
//     HTTP status and a readable message (401 goes to the sign-in page,
//     403, 404, 409, …). Render with s.show(w, r, sess, http.StatusOK,
//     "<name>", "<title>", "<nav path>", data). After a successful POST
//     redirect (303) to the page to show, with ?done=<code> for a notice
//     from the fixed list in notice(); secrets shown once (passwords) are
//     rendered directly from the POST answer instead, never put in a URL.
//  3. Route: one line in routes() (web.go), wrapped in s.page, which
//     resolves the session and checks CSRF on every method but GET/HEAD:
//     m.Handle("GET /things", s.page(s.thingList)). Paths the API owns
//     (/login, /query, /api/, /gql/, /metrics, /adapter…) never reach
//     this package.
//  4. Admin pages: link them in layout.html inside {{if .Admin}}, and
//     still let core refuse (a non-admin typing the URL gets core's 403).
//  5. Live data: set view.Live (the script reloads <main> on "change"
//     events from /events); extend visible() in events.go for new kinds
//     of events, asking core whether the actor may read what changed.
//     A thing's state (value, last seen, alarm) comes without a reload:
//     mark the element holding a thing data-thing="<id>" and its parts
//     data-field="value|last-seen|last-seen-abs|alarm"; /events sends a
//     "thing" event for every state change of a thing core lets the
//     user read (thinglive.go), which the script writes in as text.
//  6. Tests: a unit test beside the handler (web_test.go has the
//     helpers) and, for what a browser must show, tests/web_test.go.
//
// Pages about the running appliance (the status page, the listeners on
// the onboarding page) read Deps.Appliance (system.go): values and funcs
// the composition root hands over from the supervisor's health tracker,
// the listeners and the store, so this package never imports them.
package web
