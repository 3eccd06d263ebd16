//go:build !linux

package osnet

import (
	"context"
	"errors"
	"log/slog"
)

// The appliance runs Linux only; these keep packages that import osnet
// building (and their tests running) on developers' other systems.

// EthernetInterfaces is not supported outside Linux.
func EthernetInterfaces() ([]string, error) { return nil, errors.ErrUnsupported }

// LoopbackUp is not supported outside Linux.
func LoopbackUp() error { return errors.ErrUnsupported }

// Apply is not supported outside Linux.
func Apply(string, Config) error { return errors.ErrUnsupported }

// Acquire is not supported outside Linux.
func Acquire(context.Context, string, string) (Lease, error) { return Lease{}, errors.ErrUnsupported }

// Renew is not supported outside Linux.
func Renew(context.Context, string, string, Lease) (Lease, error) {
	return Lease{}, errors.ErrUnsupported
}

// Run is not supported outside Linux.
func Run(context.Context, *slog.Logger, string, string, func(Lease)) error {
	return errors.ErrUnsupported
}
