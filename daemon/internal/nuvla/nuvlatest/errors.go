package nuvlatest

import (
	"fmt"
	"net/http"
	"strings"
)

// Error is the body Nuvla sends with every error response. Test hooks that
// can fail return it too, so a test can look at the status.
type Error struct {
	Status     int    `json:"status"`
	Message    string `json:"message"`
	ResourceID string `json:"resource-id,omitempty"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("nuvlatest: %d: %s", e.Status, e.Message)
}

func newError(status int, id, msg string) *Error {
	return &Error{Status: status, Message: msg, ResourceID: id}
}

func errBadRequest(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, "", fmt.Sprintf(format, args...))
}

func errNotFound(id string) *Error {
	return newError(http.StatusNotFound, id, id+" not found")
}

// errUnauthorized mirrors ex-unauthorized: 403 for both "not logged in" and
// "not allowed".
func errUnauthorized(id string) *Error {
	if id == "" {
		return newError(http.StatusForbidden, "", "credentials required")
	}
	return newError(http.StatusForbidden, id, "invalid credentials for '"+id+"'")
}

func errConflict(id string) *Error {
	return newError(http.StatusConflict, id, "conflict with "+id)
}

func errNotAllowed(action, id string) *Error {
	return newError(http.StatusConflict, id, fmt.Sprintf("operation '%s' not allowed on %s", action, id))
}

func errBadMethod(r *http.Request) *Error {
	return newError(http.StatusMethodNotAllowed, r.URL.Path,
		fmt.Sprintf("invalid method (%s) for %s", strings.ToLower(r.Method), r.URL.Path))
}

func errBadAction(r *http.Request, action string) *Error {
	return newError(http.StatusNotFound, r.URL.Path,
		fmt.Sprintf("undefined action (%s, %s) for %s", strings.ToLower(r.Method), action, r.URL.Path))
}

// errSchema is the 400 of a closed-schema violation.
func errSchema(id, detail string) *Error {
	prefix := "resource "
	if id != "" {
		prefix += id + " "
	}
	return newError(http.StatusBadRequest, "", prefix+"does not satisfy defined schema:\n"+detail)
}
