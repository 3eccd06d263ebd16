package update

import (
	"fmt"
	"strconv"
	"strings"
)

// olderThan reports whether version a is older than b. Versions are what
// git describe prints for a tagged tree: v1.2.3, optionally followed by
// -N-g<hash> (N commits after the tag, which is newer than the tag, unlike
// a semver pre-release) and -dirty. A version that is not of this form (a
// bare commit hash, "dev") cannot be ordered: that is an error, so that a
// bundle with a minimum is never installed on a guess.
func olderThan(a, b string) (bool, error) {
	va, err := parseVersion(a)
	if err != nil {
		return false, err
	}
	vb, err := parseVersion(b)
	if err != nil {
		return false, err
	}
	for i := range va {
		if va[i] != vb[i] {
			return va[i] < vb[i], nil
		}
	}
	return false, nil
}

// parseVersion returns major, minor, patch and commits after the tag.
func parseVersion(s string) ([4]int, error) {
	var v [4]int
	rest, tagged := strings.CutPrefix(strings.TrimSuffix(s, "-dirty"), "v")
	core, describe, _ := strings.Cut(rest, "-")
	parts := strings.Split(core, ".")
	// Without its "v" a version needs a dot: a commit hash made of digits
	// only (git describe of an untagged tree) would read as a major version.
	if !tagged && len(parts) < 2 {
		return v, fmt.Errorf("version %q is not vMAJOR.MINOR.PATCH", s)
	}
	if len(parts) < 1 || len(parts) > 3 {
		return v, fmt.Errorf("version %q is not vMAJOR.MINOR.PATCH", s)
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return v, fmt.Errorf("version %q is not vMAJOR.MINOR.PATCH", s)
		}
		v[i] = n
	}
	if describe != "" {
		count, hash, ok := strings.Cut(describe, "-g")
		n, err := strconv.Atoi(count)
		if !ok || hash == "" || err != nil || n < 0 {
			return v, fmt.Errorf("version %q: %q is not git describe's -N-gHASH", s, describe)
		}
		v[3] = n
	}
	return v, nil
}
