//go:build !piot_failrun

package main

// failRun: see failrun_on.go.
const failRun = false
