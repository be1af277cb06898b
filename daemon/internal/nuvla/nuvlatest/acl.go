package nuvlatest

import "strings"

// Well-known principals.
const (
	// Admin is the administrator group; its members bypass every ACL.
	Admin = "group/nuvla-admin"
	// Owner is the user that owns every resource created through the test
	// hooks. Act as this user over HTTP with the header
	// "nuvla-authn-info: user/nuvlatest user/nuvlatest group/nuvla-user".
	Owner = "user/nuvlatest"

	groupUser     = "group/nuvla-user"
	groupAnon     = "group/nuvla-anon"
	groupNuvlabox = "group/nuvla-nuvlabox"
)

// Rights of the acl-resource hierarchy, as bits.
const (
	rViewMeta = 1 << iota
	rViewData
	rViewACL
	rEditMeta
	rEditData
	rEditACL
	rDelete
	rManage

	rAll = rViewMeta | rViewData | rViewACL | rEditMeta | rEditData | rEditACL | rDelete | rManage
)

// rightClosure maps an ACL entry name to the rights it grants, including
// the rights it derives (edit-acl > edit-data > edit-meta > view-meta, ...).
var rightClosure = map[string]int{
	"view-meta": rViewMeta,
	"view-data": rViewData | rViewMeta,
	"view-acl":  rViewACL | rViewData | rViewMeta,
	"edit-meta": rEditMeta | rViewMeta,
	"edit-data": rEditData | rEditMeta | rViewData | rViewMeta,
	"edit-acl":  rEditACL | rEditData | rEditMeta | rDelete | rManage | rViewACL | rViewData | rViewMeta,
	"delete":    rDelete | rViewMeta,
	"manage":    rManage,
}

// metadataKeys are visible with view-meta and editable with edit-meta.
var metadataKeys = map[string]bool{
	"id": true, "resource-type": true, "created": true, "updated": true, "name": true,
	"description": true, "tags": true, "subtype": true, "parent": true,
	"resource-metadata": true, "operations": true,
}

// authn is the authenticated identity of a request.
type authn struct {
	user    string // user-id, "" when anonymous
	active  string // active claim: "nuvlabox/U", "deployment/D", "user/..."
	session string // session id when logged in with a cookie
	claims  map[string]bool
}

func anonymous() *authn {
	return &authn{claims: map[string]bool{groupAnon: true}}
}

func newAuthn(user, active string, claims ...string) *authn {
	a := &authn{user: user, active: active, claims: map[string]bool{groupAnon: true}}
	if a.active == "" {
		a.active = user
	}
	a.claims[user] = true
	a.claims[a.active] = true
	for _, c := range claims {
		if c != "" {
			a.claims[c] = true
		}
	}
	return a
}

var (
	adminAuthn = newAuthn(Admin, Admin, groupUser)
	ownerAuthn = newAuthn(Owner, Owner, groupUser)
)

func (a *authn) anon() bool  { return a.user == "" }
func (a *authn) admin() bool { return a.claims[Admin] }

// identity is what the request log shows: the active claim.
func (a *authn) identity() string { return a.active }

// isBox reports whether the active claim is a nuvlabox.
func (a *authn) isBox() bool { return strings.HasPrefix(a.active, "nuvlabox/") }

func (a *authn) claimList() []string {
	out := make([]string, 0, len(a.claims))
	for c := range a.claims {
		out = append(out, c)
	}
	return out
}

// rights computes the rights an identity has on a document.
func rights(a *authn, doc map[string]any) int {
	if a.admin() {
		return rAll
	}
	acl := mapOf(doc["acl"])
	for _, p := range strList(acl["owners"]) {
		if a.claims[p] {
			return rAll
		}
	}
	r := 0
	for name, principals := range acl {
		if name == "owners" {
			continue
		}
		for _, p := range strList(principals) {
			if a.claims[p] {
				r |= rightClosure[name]
				break
			}
		}
	}
	return r
}

func canView(r int) bool     { return r&(rViewMeta|rViewData|rViewACL) != 0 }
func canViewData(r int) bool { return r&rViewData != 0 }
func canEdit(r int) bool     { return r&(rEditMeta|rEditData|rEditACL) != 0 }
func canDelete(r int) bool   { return r&rDelete != 0 }
func canManage(r int) bool   { return r&rManage != 0 }

// editableKeys filters keys down to those the rights allow to change.
func editableKeys(keys []string, r int) []string {
	var out []string
	for _, k := range keys {
		switch {
		case r&rEditACL != 0:
		case r&rEditData != 0:
			if k == "acl" {
				continue
			}
		case r&rEditMeta != 0:
			if !metadataKeys[k] {
				continue
			}
		default:
			continue
		}
		out = append(out, k)
	}
	return out
}

// viewable reduces a document to the keys the rights allow to see, nil if
// none.
func viewable(doc map[string]any, r int) map[string]any {
	switch {
	case r&rViewACL != 0:
		return doc
	case r&rViewData != 0:
		delete(doc, "acl")
		return doc
	case r&rViewMeta != 0:
		for k := range doc {
			if !metadataKeys[k] {
				delete(doc, k)
			}
		}
		return doc
	}
	return nil
}

// acl builds an ACL document from right -> principals pairs, dropping empty
// principals and duplicates.
func acl(pairs ...string) map[string]any {
	out := map[string]any{}
	for i := 0; i+1 < len(pairs); i += 2 {
		right, p := pairs[i], pairs[i+1]
		if p == "" {
			continue
		}
		list := listOf(out[right])
		if !containsAny(list, p) {
			out[right] = append(list, p)
		}
	}
	if _, ok := out["owners"]; !ok {
		out["owners"] = []any{Admin}
	}
	return out
}

// aclAppend adds a principal to one right of a document's ACL.
func aclAppend(doc map[string]any, right, principal string) {
	if principal == "" {
		return
	}
	a := mapOf(doc["acl"])
	if a == nil {
		a = map[string]any{"owners": []any{Admin}}
	}
	list := listOf(a[right])
	if !containsAny(list, principal) {
		a[right] = append(list, principal)
	}
	doc["acl"] = a
}

func containsAny(list []any, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
