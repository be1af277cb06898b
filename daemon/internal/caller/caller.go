// Package caller says who is making a local API request: the uid, gid and
// groups of the process at the other end of the unix socket, or the user
// the loopback web listener acts for. The api package resolves it once per
// request and stores it in the request's context; feature handlers read it
// with FromContext and authorise by it.
package caller

import (
	"context"
	"fmt"
	"os/user"
	"slices"
	"strconv"
)

// Caller is the local user behind a request.
type Caller struct {
	UID int
	GID int
	// Name is the login name, or the uid in decimal when the user has no
	// passwd entry.
	Name string
	// Groups are the user's supplementary group ids (the primary one too).
	Groups []int
	// Admin callers see and manage every user's sessions (uid 0, or a
	// member of the configured admin group).
	Admin bool
	// Web is true for requests from the loopback web listener.
	Web bool
}

// InGroup reports whether gid is the caller's primary or a supplementary group.
func (c Caller) InGroup(gid int) bool { return c.GID == gid || slices.Contains(c.Groups, gid) }

// Owner is the value of the berth.owner label of the caller's apps.
func (c Caller) Owner() string { return strconv.Itoa(c.UID) }

type key struct{}

// With returns ctx carrying c.
func With(ctx context.Context, c Caller) context.Context { return context.WithValue(ctx, key{}, c) }

// FromContext returns the caller stored by With; ok is false when the
// request's caller is unknown (for example, the kernel gave no credentials).
func FromContext(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(key{}).(Caller)
	return c, ok
}

// Lookup builds the Caller of uid/gid from the user database: its name and
// groups. adminGID (-1: none) makes members of that group admins; uid 0 is
// always an admin. A uid without a passwd entry still gets a Caller, named
// by its number, with only its primary group.
func Lookup(uid, gid, adminGID int) Caller {
	c := Caller{UID: uid, GID: gid, Name: strconv.Itoa(uid), Groups: []int{gid}}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		c.Name = u.Username
		if ids, err := u.GroupIds(); err == nil {
			for _, s := range ids {
				if g, err := strconv.Atoi(s); err == nil && !slices.Contains(c.Groups, g) {
					c.Groups = append(c.Groups, g)
				}
			}
		}
	}
	c.Admin = uid == 0 || (adminGID >= 0 && c.InGroup(adminGID))
	return c
}

// ResolveUser turns a user name or numeric uid into uid and primary gid.
func ResolveUser(s string) (uid, gid int, err error) {
	var u *user.User
	if _, convErr := strconv.Atoi(s); convErr == nil {
		u, err = user.LookupId(s)
	} else {
		u, err = user.Lookup(s)
	}
	if err != nil {
		if n, convErr := strconv.Atoi(s); convErr == nil && n >= 0 {
			return n, n, nil // a uid without a passwd entry: its own group
		}
		return 0, 0, fmt.Errorf("user %q: %w", s, err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid, nil
}

// ResolveGroup turns a group name or numeric gid into a gid; ok is false
// when no such group exists.
func ResolveGroup(s string) (int, bool) {
	if s == "" {
		return -1, false
	}
	if n, err := strconv.Atoi(s); err == nil {
		return n, true
	}
	g, err := user.LookupGroup(s)
	if err != nil {
		return -1, false
	}
	n, err := strconv.Atoi(g.Gid)
	return n, err == nil
}
