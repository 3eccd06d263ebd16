package core

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// Code classifies an error for clients; the API turns it into the GraphQL
// `extensions.code` and the console into a status line.
type Code string

// Error codes, shared with the GraphQL API.
const (
	CodeUnauthenticated Code = "UNAUTHENTICATED"
	CodeForbidden       Code = "FORBIDDEN"
	CodeNotFound        Code = "NOT_FOUND"
	CodeBadInput        Code = "BAD_USER_INPUT"
	CodeConflict        Code = "CONFLICT"
	CodeInternal        Code = "INTERNAL_SERVER_ERROR"
	// CodeRateLimited answers HTTP 429; clients should honour Retry-After.
	CodeRateLimited Code = "RATE_LIMITED"
	// CodeTimeout: the request ran past its deadline and was stopped.
	CodeTimeout Code = "TIMEOUT"
	// CodeUnavailable answers HTTP 503 (busy or not ready); clients
	// should honour Retry-After.
	CodeUnavailable Code = "UNAVAILABLE"
	// CodeStorageFull: the appliance has no disk space left to store
	// what was sent (HTTP 507); nothing was stored, sending again later
	// is safe.
	CodeStorageFull Code = "INSUFFICIENT_STORAGE"
)

// StorageFull reports whether err comes from a disk without space: the
// kernel's ENOSPC, or SQLite's (so the embedded store's) "database or
// disk is full", which reaches us as text through the store's protocol.
func StorageFull(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, syscall.ENOSPC) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "database or disk is full") || strings.Contains(msg, "no space left on device")
}

// Error is a domain error with a message safe to show to the caller.
type Error struct {
	Code Code
	Msg  string
	Err  error // cause, for logs only
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Msg, e.Err)
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// CodeOf returns the code of err, INTERNAL_SERVER_ERROR for foreign errors.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// Message returns the client-safe message of err.
func Message(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Msg
	}
	return "internal error"
}

func errf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

func internal(msg string, err error) *Error {
	if StorageFull(err) {
		return &Error{Code: CodeStorageFull, Msg: msg + ": the appliance's storage is full", Err: err}
	}
	return &Error{Code: CodeInternal, Msg: msg, Err: err}
}

var (
	errUnauthenticated = errf(CodeUnauthenticated, "authentication required")
	errForbidden       = errf(CodeForbidden, "not allowed")
)

// NewError builds a domain error for layers that validate their own input
// (for example the history query), so clients see one error shape.
func NewError(code Code, msg string) *Error { return &Error{Code: code, Msg: msg} }

// ErrDeadline is the cause given to a request's context when it runs past
// its time limit, so that whatever the deadline interrupted is reported
// as a timeout rather than an internal error.
var ErrDeadline = errf(CodeTimeout, "the request ran longer than its time limit and was stopped")
