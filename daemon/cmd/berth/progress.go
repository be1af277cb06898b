package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/berth-edge/berth/daemon/client"
)

// barWidth is the number of cells of the pull progress bar.
const barWidth = 30

// progress shows an image pull: a bar redrawn in place on a terminal,
// plain lines (one per finished layer) otherwise.
type progress struct {
	w     io.Writer
	tty   bool
	shown bool // a bar is on the current line
	last  string
	done  int // layers reported in plain mode
	// started is set once a pull event was shown.
	started bool
}

func newProgress(w io.Writer) *progress { return &progress{w: w, tty: isTerminal(w)} }

// update shows p.
func (pr *progress) update(p client.PullProgress) {
	if pr == nil {
		return
	}
	if pr.tty {
		line := pullBar(p, barWidth)
		if line == pr.last {
			return
		}
		pr.last = line
		fmt.Fprint(pr.w, "\r\x1b[K"+line)
		pr.shown = true
		if p.Done || p.Error != "" {
			pr.finish()
		}
		return
	}
	if p.Error != "" {
		fmt.Fprintf(pr.w, "Pulling %s failed: %s\n", clean(p.Image), clean(p.Error))
		return
	}
	if p.Done {
		line := "Pulled " + clean(p.Image)
		var parts []string
		if p.Total > 0 {
			parts = append(parts, bytesHuman(p.Total))
		}
		if p.Layers > 0 {
			parts = append(parts, fmt.Sprintf("%d layers", p.Layers))
		}
		if len(parts) > 0 {
			line += " (" + strings.Join(parts, ", ") + ")"
		}
		fmt.Fprintln(pr.w, line)
		pr.started = true
		return
	}
	if !pr.started || p.LayersDone > pr.done {
		pr.started = true
		pr.done = p.LayersDone
		fmt.Fprintln(pr.w, pullLine(p))
	}
}

// note shows a status message (one line per change).
func (pr *progress) note(msg string) {
	if pr == nil || msg == pr.last || pr.shown || pr.started {
		return
	}
	pr.last = msg
	fmt.Fprintln(pr.w, clean(msg))
}

// finish ends the bar's line.
func (pr *progress) finish() {
	if pr == nil || !pr.shown {
		return
	}
	fmt.Fprintln(pr.w)
	pr.shown = false
}

// pullBar is the terminal line of a pull:
// "Pulling img  [#######-------]  45%  12.3MiB/27.0MiB  3/5 layers".
func pullBar(p client.PullProgress, width int) string {
	img := clean(p.Image)
	if p.Error != "" {
		return "Pulling " + img + " failed: " + clean(p.Error)
	}
	frac := 0.0
	switch {
	case p.Done:
		frac = 1
	case p.Total > 0:
		frac = min(1, float64(p.Current)/float64(p.Total))
	}
	fill := int(frac * float64(width))
	bar := "[" + strings.Repeat("#", fill) + strings.Repeat("-", width-fill) + "]"
	size := "?"
	if p.Total > 0 {
		size = bytesHuman(p.Current) + "/" + bytesHuman(p.Total)
	}
	verb := "Pulling"
	if p.Done {
		verb = "Pulled"
	}
	return fmt.Sprintf("%s %s  %s %3d%%  %s  %d/%d layers", verb, img, bar, int(frac*100), size, p.LayersDone, p.Layers)
}

// pullLine is the plain line of a pull's progress.
func pullLine(p client.PullProgress) string {
	s := fmt.Sprintf("Pulling %s: %d/%d layers", clean(p.Image), p.LayersDone, p.Layers)
	if p.Total > 0 {
		s += ", " + bytesHuman(p.Current) + " of " + bytesHuman(p.Total)
	}
	return s
}
