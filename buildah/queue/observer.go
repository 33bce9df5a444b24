package queue

import (
	"time"

	"imagehub/store"
)

// Observer is told how builds end, for the server's metrics; the queue knows
// nothing of how they are kept. Its methods are called from the goroutines
// that run builds and must return at once.
type Observer interface {
	// BuildFinished tells that a build's final status st was recorded. ran
	// is how long the build ran in this process; it is zero for a build
	// that never ran here (cancelled while queued, or ended after a
	// restart of the server).
	BuildFinished(st store.BuildStatus, ran time.Duration)
	// PushFinished tells that a worker finished pushing, whatever the
	// result: took runs from its pushing event to its done event.
	PushFinished(took time.Duration)
}

// nopObserver is the Observer of a queue that is given none.
type nopObserver struct{}

func (nopObserver) BuildFinished(store.BuildStatus, time.Duration) {}
func (nopObserver) PushFinished(time.Duration)                     {}

// Running is the number of builds this queue runs now (running or pushing).
func (q *Queue) Running() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.active)
}
