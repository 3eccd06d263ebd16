//go:build piot_failrun

package main

// failRun makes `piot run` exit at start. Only the update test builds
// with the tag (image/build.sh PIOT_GO_TAGS=piot_failrun): its bundle
// boots but never becomes ready, which must end in a rollback (issue 14).
const failRun = true
