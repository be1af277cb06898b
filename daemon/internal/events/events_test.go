package events

import (
	"encoding/json"
	"testing"
)

func TestPublishFanOutAndDropSlow(t *testing.T) {
	var h Hub
	fast := h.Subscribe(4)
	slow := h.Subscribe(1)
	h.Publish(TypeApp, map[string]string{"id": "a"})
	if m := <-fast.C; m.Type != TypeApp {
		t.Fatalf("type %q", m.Type)
	} else {
		var e struct {
			Type string            `json:"type"`
			Data map[string]string `json:"data"`
		}
		if err := json.Unmarshal(m.Data, &e); err != nil || e.Data["id"] != "a" || e.Type != TypeApp {
			t.Fatalf("event %s: %v", m.Data, err)
		}
	}
	if slow.Dropped() {
		t.Fatal("dropped too early")
	}
	h.Publish(TypeJob, 1) // slow's buffer (1) is full: it is dropped
	if !slow.Dropped() || h.Subscribers() != 1 || h.DroppedTotal() != 1 {
		t.Fatalf("slow subscriber not dropped: %v %d", slow.Dropped(), h.Subscribers())
	}
	n := 0
	for range slow.C { // drained then closed
		n++
	}
	if n != 1 {
		t.Fatalf("slow got %d events", n)
	}
	h.Unsubscribe(slow) // harmless after a drop
	h.Unsubscribe(fast)
	h.Unsubscribe(fast)
	if _, ok := <-fast.C; ok {
		// fast had 2 buffered job events: drain.
		for range fast.C {
		}
	}
	h.Publish(TypeTelemetry, nil) // no subscribers: no-op
}
