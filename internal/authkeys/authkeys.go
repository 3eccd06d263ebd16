// Package authkeys reads and edits OpenSSH authorized_keys files by the
// rules the console's SSH server honours them: one key a line, blank
// lines and # comments ignored, lines with options (from=, command=, …)
// not honoured rather than half-honoured, and a file others may write
// ignored altogether, like sshd's StrictModes.
package authkeys

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"golang.org/x/crypto/ssh"
)

// MaxFileSize bounds what is read of a file: far more than any list of
// console keys, little enough that a runaway file cannot eat the memory.
const MaxFileSize = 1 << 20

// Entry is one line of the file that is not blank and not a comment.
type Entry struct {
	Line    int           // 1-based
	Key     ssh.PublicKey // nil when the line does not parse
	Comment string
	Options []string
	Err     error // why the line does not parse
}

// Honoured reports whether the line's key logs in.
func (e Entry) Honoured() bool { return e.Err == nil && len(e.Options) == 0 }

// Fingerprint is the key's SHA-256 fingerprint, "" when it does not parse.
func (e Entry) Fingerprint() string {
	if e.Key == nil {
		return ""
	}
	return ssh.FingerprintSHA256(e.Key)
}

// Trusted reports whether a file of this mode may be honoured: a regular
// file writable only by its owner.
func Trusted(mode fs.FileMode) bool { return mode.IsRegular() && mode.Perm()&0o022 == 0 }

// Read returns the file's content and mode. A file that does not exist
// reads as empty with fs.ErrNotExist.
func Read(path string) ([]byte, fs.FileMode, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("stat %s: %w", path, err)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, 0, fmt.Errorf("%s is larger than %d bytes", path, MaxFileSize)
	}
	return data, st.Mode(), nil
}

// Parse returns the entries of the file's content, in order.
func Parse(data []byte) []Entry {
	var out []Entry
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		e := Entry{Line: i + 1}
		key, comment, options, _, err := ssh.ParseAuthorizedKey(line)
		if err != nil {
			e.Err = err
		} else {
			e.Key, e.Comment, e.Options = key, comment, options
		}
		out = append(out, e)
	}
	return out
}

// ErrNoSuchKey is Remove's answer for a fingerprint no line has.
var ErrNoSuchKey = errors.New("no such key in authorized_keys")

// Remove returns data without the lines whose key has the fingerprint,
// and how many lines went; every other line, comments included, stays
// byte for byte.
func Remove(data []byte, fingerprint string) ([]byte, int, error) {
	gone := map[int]bool{}
	for _, e := range Parse(data) {
		if e.Key != nil && e.Fingerprint() == fingerprint {
			gone[e.Line] = true
		}
	}
	if len(gone) == 0 {
		return data, 0, ErrNoSuchKey
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	var out bytes.Buffer
	for i, l := range lines {
		if !gone[i+1] {
			out.Write(l)
		}
	}
	return out.Bytes(), len(gone), nil
}
