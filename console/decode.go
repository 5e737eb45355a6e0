package console

import (
	"encoding/json"
	"fmt"
	"time"
)

// decode reads a record as the engine sends it (JSON) into a page's view of it.
func decode(raw json.RawMessage, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("console: read record: %w", err)
	}
	return nil
}

// jsonTime is a time the engine sends (RFC 3339).
type jsonTime struct{ time.Time }
