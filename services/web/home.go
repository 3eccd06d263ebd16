package web

import (
	"net/http"

	"github.com/piot-appliance/piot/services/core"
)

type homeData struct {
	// Active is the active org; zero ID when the user has none.
	Active  core.Org
	Members []core.User
	// Stats are the appliance-wide counts; core gives them to admins only.
	Stats *core.Stats
}

// home is the overview: the active org and its members, and for admins
// the appliance's counts.
func (s *Server) home(w http.ResponseWriter, r *http.Request, sess *session) {
	var d homeData
	if id := s.deps.Core.ActiveOrg(sess.actor); !id.IsZero() {
		o, err := s.deps.Core.Org(sess.actor, id)
		if err != nil {
			s.fail(w, r, sess, err)
			return
		}
		d.Active = o
		if d.Members, err = s.deps.Core.OrgUsers(sess.actor, id); err != nil {
			s.fail(w, r, sess, err)
			return
		}
	}
	if st, err := s.deps.Core.StatsFor(sess.actor); err == nil {
		d.Stats = &st
	}
	s.show(w, r, sess, http.StatusOK, "home", "Overview", "/", d)
}
