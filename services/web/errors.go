package web

import (
	"net/http"

	"github.com/piot-appliance/piot/services/core"
)

// statusOf maps core's error codes to HTTP. Core decides who may do what;
// the pages only say so.
func statusOf(code core.Code) int {
	switch code {
	case core.CodeUnauthenticated:
		return http.StatusUnauthorized
	case core.CodeForbidden:
		return http.StatusForbidden
	case core.CodeNotFound:
		return http.StatusNotFound
	case core.CodeBadInput:
		return http.StatusBadRequest
	case core.CodeConflict:
		return http.StatusConflict
	case core.CodeRateLimited:
		return http.StatusTooManyRequests
	case core.CodeTimeout, core.CodeUnavailable:
		return http.StatusServiceUnavailable
	case core.CodeStorageFull:
		return http.StatusInsufficientStorage
	}
	return http.StatusInternalServerError
}

// fail is the one place a page turns an error into an answer: the status
// from core's code and core's message, which is safe to show (internal
// details go to the log only). sess is nil before sign-in.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, sess *session, err error) {
	code := core.CodeOf(err)
	if code == core.CodeUnauthenticated {
		s.signedOut(w, r, err)
		return
	}
	if code == core.CodeInternal || code == core.CodeStorageFull {
		s.log.Error("web: request failed", "path", r.URL.Path, "err", err)
	}
	s.refuse(w, r, sess, statusOf(code), core.Message(err))
}

type errorData struct {
	Status  int
	Message string
}

// refuse shows the error page with a message of the web's own.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, sess *session, status int, msg string) {
	v := view{}
	if sess != nil {
		v = s.layout(sess)
	}
	v.Title = http.StatusText(status)
	v.Data = errorData{Status: status, Message: msg}
	s.render(w, status, "error", v)
}

// notFound answers paths the manager does not have, with the layout when
// signed in so the way back is one click.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	sess, _ := s.sessionOf(r)
	s.refuse(w, r, sess, http.StatusNotFound, "There is no page at this address.")
}
