package installer

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// Version is a package version: Upstream goes into the binaries (berthd
// --version) and, with Revision, into the Debian version Upstream-Revision.
type Version struct {
	Upstream string
	Revision string
}

// Debian is the full Debian version, e.g. "0.1.0+git5.1a2b3c4d5e-1".
func (v Version) Debian() string { return v.Upstream + "-" + v.Revision }

var (
	describeRE = regexp.MustCompile(`^v?([0-9][0-9A-Za-z.+~-]*?)-([0-9]+)-g([0-9a-f]+)(-dirty)?$`)
	debUpRE    = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`)
)

// VersionFromDescribe maps `git describe --tags --long --dirty` output (or,
// with no tag, the commit count and hash) to a Debian version:
//
//	v0.1.0-0-gabc (on the tag)       0.1.0-1
//	v0.1.0-5-gabc (5 commits later)  0.1.0+git5.abc-1
//	v0.2.0-rc1-0-gabc                0.2.0~rc1-1   (sorts before 0.2.0)
//	no tag, 42 commits, hash abc     0.0.0+git42.abc-1
//	any of these, uncommitted edits  ...+dirty / .dirty
//
// "+git<N>" rather than "~git<N>": a build made after tag v0.1.0 must sort
// after the 0.1.0 release, so that installing it is an upgrade. Builds from
// one branch sort by N, the number of commits since the tag (or since the
// first commit).
func VersionFromDescribe(describe string, count int, hash string, dirty bool) (Version, error) {
	up := ""
	switch {
	case describe != "":
		m := describeRE.FindStringSubmatch(strings.TrimSpace(describe))
		if m == nil {
			return Version{}, fmt.Errorf("git describe %q does not look like v<version>-<n>-g<hash>", describe)
		}
		up = strings.Replace(m[1], "-", "~", 1) // v0.2.0-rc1: a pre-release sorts before 0.2.0
		if n, _ := strconv.Atoi(m[2]); n > 0 {
			up += fmt.Sprintf("+git%d.%s", n, m[3])
		}
		dirty = dirty || m[4] != ""
	default:
		if hash == "" {
			return Version{}, fmt.Errorf("no tag and no commit: cannot derive a version")
		}
		up = fmt.Sprintf("0.0.0+git%d.%s", count, hash)
	}
	if dirty {
		if strings.Contains(up, "+") {
			up += ".dirty"
		} else {
			up += "+dirty"
		}
	}
	v := Version{Upstream: up, Revision: "1"}
	return v, v.Validate()
}

// Validate checks the version against Debian policy §5.6.12 (no epoch).
func (v Version) Validate() error {
	if !debUpRE.MatchString(v.Upstream) {
		return fmt.Errorf("upstream version %q: must start with a digit and contain only [A-Za-z0-9.+~]", v.Upstream)
	}
	if v.Revision == "" || strings.Trim(v.Revision, "0123456789.+~abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		return fmt.Errorf("debian revision %q: must be non-empty and contain only [A-Za-z0-9.+~]", v.Revision)
	}
	return nil
}

// GitVersion derives the version of the checkout at dir.
func GitVersion(ctx context.Context, dir string) (Version, error) {
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(ee.Stderr)))
			}
			return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	hash, err := git("rev-parse", "--short=10", "HEAD")
	if err != nil {
		return Version{}, err
	}
	dirty := false
	if out, err := git("status", "--porcelain", "--untracked-files=no"); err == nil && out != "" {
		dirty = true
	}
	if d, err := git("describe", "--tags", "--long", "--match", "v[0-9]*", "--abbrev=10"); err == nil {
		return VersionFromDescribe(d, 0, "", dirty)
	}
	cs, err := git("rev-list", "--count", "HEAD")
	if err != nil {
		return Version{}, err
	}
	count, err := strconv.Atoi(cs)
	if err != nil {
		return Version{}, fmt.Errorf("git rev-list --count: %q", cs)
	}
	return VersionFromDescribe("", count, hash, dirty)
}
