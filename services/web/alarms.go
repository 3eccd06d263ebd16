package web

import (
	"net/http"

	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/monitor"
)

type alarmsData struct {
	// All lists cleared alarms too; else only active ones.
	All    bool
	Alarms []monitor.Alarm
	// NoMonitor: the appliance runs no monitor.
	NoMonitor bool
}

// alarmList lists the alarms core lets the user see (the monitor's
// AlarmsFor, as the GraphQL alarms field): active ones, or all.
func (s *Server) alarmList(w http.ResponseWriter, r *http.Request, sess *session) {
	d := alarmsData{All: r.URL.Query().Get("show") == "all"}
	if s.deps.Monitor == nil {
		d.NoMonitor = true
	} else {
		var active *bool
		if !d.All {
			yes := true
			active = &yes
		}
		var err error
		if d.Alarms, err = s.deps.Monitor.AlarmsFor(sess.actor, active); err != nil {
			s.fail(w, r, sess, err)
			return
		}
	}
	s.show(w, r, sess, http.StatusOK, "alarms", "Alarms", "/alarms", d)
}

// alarmAck acknowledges an alarm with the monitor's operation, which asks
// core (MayHandleAlarm) whether the user may.
func (s *Server) alarmAck(w http.ResponseWriter, r *http.Request, sess *session) {
	if s.deps.Monitor == nil {
		s.fail(w, r, sess, core.NewError(core.CodeUnavailable, "The monitor is not running."))
		return
	}
	if _, err := s.deps.Monitor.Acknowledge(r.Context(), sess.actor, r.PathValue("id")); err != nil {
		s.fail(w, r, sess, err)
		return
	}
	http.Redirect(w, r, withDone(backTo(r, "/alarms"), "alarm-acknowledged"), http.StatusSeeOther)
}
