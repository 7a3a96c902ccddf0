package daemon

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// Status is what StatusFile holds: what a serving relay says about itself.
type Status struct {
	PID            int    `json:"pid"`
	Mode           string `json:"mode"` // "tor" or "loopback"
	Listen         string `json:"listen,omitempty"`
	Intake         string `json:"intake_onion,omitempty"`
	Handler        string `json:"handler_onion,omitempty"`
	HandlerClients int    `json:"handler_clients,omitempty"`
	HandlerDown    bool   `json:"handler_down,omitempty"` // being published again
	PoW            bool   `json:"pow"`
	TorVersion     string `json:"tor_version,omitempty"`
	TorState       string `json:"tor_state,omitempty"`
	Desks          int    `json:"desks"`
	Submissions    int    `json:"submissions"`
	Uploads        int    `json:"uploads"`
	Events         int    `json:"events"` // case journal events waiting
	Committed      int64  `json:"committed"`
	Quota          int64  `json:"quota"`
	FileSize       int64  `json:"file_size"`
	CircuitIDs     bool   `json:"circuit_ids,omitempty"` // tor tells the intake onion's circuits apart
	Circuits       int64  `json:"circuits,omitempty"`    // circuits the per-circuit limits have seen
	Updated        string `json:"updated"`
}

// ReadStatus reads the status file of the relay serving the data directory
// dir. It fails when there is none, as before the relay's first status, or
// when it cannot be read.
func ReadStatus(dir string) (*Status, error) {
	b, err := os.ReadFile(filepath.Join(dir, StatusFile))
	if err != nil {
		return nil, err
	}
	var st Status
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// saveStatus replaces the status file, through a temporary file, so that a
// reader never sees half of one. A failure is left for the next one.
func saveStatus(dir string, s *Status) {
	b, _ := json.MarshalIndent(s, "", "  ")
	p := filepath.Join(dir, StatusFile)
	tmp := p + ".tmp"
	if os.WriteFile(tmp, b, 0o600) == nil {
		os.Rename(tmp, p)
	}
}
