// Package httpjson writes the local API's JSON answers: a value, or a
// client.Error body {"status":..., "message":...} with the matching code.
package httpjson

import (
	"encoding/json"
	"net/http"

	"github.com/berth-edge/berth/daemon/client"
)

// Write writes v as the JSON body of an answer with code.
func Write(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(client.Error{Status: code, Message: "encoding the answer: " + err.Error()})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// Error writes a client.Error answer.
func Error(w http.ResponseWriter, code int, msg string) {
	Write(w, code, client.Error{Status: code, Message: msg})
}

// Text writes a text/plain answer (skaha answers a launch with the session
// id as text).
func Text(w http.ResponseWriter, code int, s string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(s))
}
