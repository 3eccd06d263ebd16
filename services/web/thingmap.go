package web

import (
	"net/http"

	"github.com/piot-appliance/piot/services/core"
)

type mapData struct {
	Org     *core.Org
	Chart   geoChart
	Located []core.Thing
	// Missing counts the org's things without a position.
	Missing int
}

// thingMap plots the positions of the active org's things on a plain
// lat/lon plot (no tile server: the appliance works offline), each point
// a link to its thing.
func (s *Server) thingMap(w http.ResponseWriter, r *http.Request, sess *session) {
	page, err := s.deps.Core.Things(sess.actor, byName)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	var d mapData
	if id := s.deps.Core.ActiveOrg(sess.actor); !id.IsZero() {
		if o, err := s.deps.Core.Org(sess.actor, id); err == nil {
			d.Org = &o
		}
	}
	var ps []geoPoint
	for _, t := range page.Items {
		if t.LocLat == 0 && t.LocLng == 0 {
			d.Missing++
			continue
		}
		d.Located = append(d.Located, t)
	}
	sortThings(d.Located)
	for _, t := range d.Located {
		ps = append(ps, geoPoint{Lat: t.LocLat, Lng: t.LocLng, Label: t.Name, Href: "/things/" + t.ID.Hex(), Alarm: t.AlarmActive})
	}
	d.Chart = geoPlot(ps, false)
	s.show(w, r, sess, http.StatusOK, "map", "Map", "/map", d)
}
