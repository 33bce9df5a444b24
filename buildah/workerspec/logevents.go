package workerspec

import (
	"bytes"
	"encoding/json"
)

// A worker in a Kubernetes pod has one channel back to the server: its log,
// which the server follows through the API. There its events are lines of
// the log, marked with the build's event token (Spec.EventToken), a secret
// that only the worker knows (it reaches the pod in the build's Secret): a
// RUN step that prints something that looks like an event line cannot know
// the token, so it cannot forge a result.
//
// An event line is LogEventMarker, the token, a space and the event's JSON.
// It may start in the middle of a line (after output that did not end with
// a newline, and concurrent writes of RUN steps' output); what comes before
// the marker is log.
const LogEventMarker = "\x1eimagehub-event:"

// LogEventLine is ev as an event line for token, ending with a newline.
func LogEventLine(token string, ev Event) ([]byte, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	line := append([]byte(LogEventMarker+token+" "), b...)
	return append(line, '\n'), nil
}

// ParseLogEvent splits one line of a worker's log (with or without its
// newline) into the log that comes before an event line and the event, when
// the line holds one marked with token. A line with no event, or one marked
// with another token, is log as a whole.
func ParseLogEvent(token string, line []byte) (logPart []byte, ev Event, ok bool) {
	mark := []byte(LogEventMarker + token + " ")
	i := bytes.Index(line, mark)
	if token == "" || i < 0 {
		return line, Event{}, false
	}
	if json.Unmarshal(bytes.TrimRight(line[i+len(mark):], "\r\n"), &ev) != nil {
		return line, Event{}, false
	}
	return line[:i], ev, true
}
