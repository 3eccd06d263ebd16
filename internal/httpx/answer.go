package httpx

import (
	"encoding/json"
	"net/http"
)

// Answer is the original system's answer envelope, which the device
// protocols keep as devices parse it: {"error":…,"result":…}.
type Answer struct {
	Error  string `json:"error"`
	Result string `json:"result"`
}

// CodedAnswer is the envelope of the appliance's own endpoints (the API,
// the alert webhook): the original fields, then the machine-readable code
// of a failure (one of core's error codes), "" on success.
type CodedAnswer struct {
	Error  string `json:"error"`
	Result string `json:"result"`
	Code   string `json:"code"`
}

// WriteJSON answers status with v encoded as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteAnswer answers status with the original envelope.
func WriteAnswer(w http.ResponseWriter, status int, a Answer) { WriteJSON(w, status, a) }

// WriteError answers a failure of one of the appliance's own endpoints:
// {"error":msg,"result":"","code":code}, msg for people and code (one of
// core's error codes) for programs.
func WriteError[C ~string](w http.ResponseWriter, status int, code C, msg string) {
	WriteJSON(w, status, CodedAnswer{Error: msg, Code: string(code)})
}
