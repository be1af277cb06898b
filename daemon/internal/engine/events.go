package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/berth-edge/berth/daemon/internal/apps"
)

// Event is a hint that one of berth's containers changed. Events can be
// dropped (by Docker under load, or here when the consumer is slow), so a
// consumer treats them as a reason to look, and resyncs on a timer anyway.
type Event struct {
	AppID       string    `json:"app"`
	ContainerID string    `json:"container"`
	Service     string    `json:"service,omitempty"`
	Action      string    `json:"action"` // create, start, die, destroy, health_status: healthy, ...
	Time        time.Time `json:"time"`
}

// Event stream tuning.
const (
	eventsBuffer     = 64   // channel capacity towards the consumer
	eventsMaxPending = 1024 // events held back for a slow consumer
	eventsBackoffMin = 250 * time.Millisecond
	eventsBackoffMax = 30 * time.Second
)

// Events streams the container events of berth's containers (label
// berth.managed=true) from now on. One goroutine owns the subscription: it
// reconnects with jittered backoff when the stream fails (resuming from the
// last event seen, so little is lost), never blocks Docker's stream (a slow
// consumer gets duplicates coalesced and, past a bound, the oldest events
// dropped), and closes the channel once ctx is done.
func (e *Engine) Events(ctx context.Context) <-chan Event {
	out := make(chan Event, eventsBuffer)
	go e.runEvents(ctx, out)
	return out
}

func (e *Engine) runEvents(ctx context.Context, out chan<- Event) {
	defer close(out)
	since := time.Now()
	var pending []Event
	dropped := 0
	backoff := eventsBackoffMin

	// next returns the send channel and head event when something is pending.
	next := func() (chan<- Event, Event) {
		if len(pending) == 0 {
			return nil, Event{}
		}
		return out, pending[0]
	}
	add := func(ev Event) {
		for _, p := range pending {
			if p.ContainerID == ev.ContainerID && p.Action == ev.Action {
				return // coalesce: the consumer will look at this container anyway
			}
		}
		if len(pending) >= eventsMaxPending {
			pending = pending[1:]
			dropped++
			if dropped == 1 || dropped%100 == 0 {
				e.log.Warn("event consumer is slow, dropping events", "dropped", dropped)
			}
		}
		pending = append(pending, ev)
	}

	for {
		sctx, cancel := context.WithCancel(ctx)
		msgs, errs := e.cli.Events(sctx, events.ListOptions{
			Since: fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond()),
			Filters: filters.NewArgs(
				filters.Arg("type", string(events.ContainerEventType)),
				filters.Arg("label", apps.LabelManaged+"="+apps.ManagedValue),
			),
		})
		var streamErr error
	stream:
		for {
			send, head := next()
			select {
			case <-ctx.Done():
				cancel()
				return
			case m := <-msgs:
				backoff = eventsBackoffMin
				t := time.Unix(0, m.TimeNano)
				if m.TimeNano == 0 {
					t = time.Unix(m.Time, 0)
				}
				if t.After(since) {
					since = t
				}
				add(Event{
					AppID:       m.Actor.Attributes[apps.LabelApp],
					ContainerID: m.Actor.ID,
					Service:     m.Actor.Attributes[apps.LabelComposeService],
					Action:      string(m.Action),
					Time:        t,
				})
			case send <- head:
				pending = pending[1:]
			case err := <-errs:
				streamErr = err
				break stream
			}
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		if streamErr == nil {
			streamErr = errors.New("stream closed")
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(backoff*2, eventsBackoffMax)
		e.log.Warn("docker event stream failed, reconnecting", "error", streamErr, "in", wait)
		timer := time.NewTimer(wait)
	waiting:
		for {
			send, head := next()
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
				break waiting
			case send <- head:
				pending = pending[1:]
			}
		}
	}
}
