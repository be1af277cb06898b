package main

import (
	"bytes"

	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-edge/berth/daemon/client"
)

// clearScreen moves the cursor home and clears the terminal.
const clearScreen = "\x1b[H\x1b[2J"

func (c *cli) topCmd() *cobra.Command {
	var once bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Show each app's CPU and memory use, refreshed every second",
		Long: "berth top shows the host's load and each app's CPU and memory use, refreshing\n" +
			"until interrupted; on a terminal it redraws the screen. CPU % is relative to one\n" +
			"core (200% = two cores busy). With --once it prints one table and exits.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			tty := false
			if f, ok := out.(*os.File); ok {
				tty = term.IsTerminal(int(f.Fd()))
			}
			if interval <= 0 {
				interval = time.Second
			}
			for {
				var buf bytes.Buffer
				if err := c.topOnce(cmd, &buf); err != nil {
					return err
				}
				if tty && !once {
					buf = *bytes.NewBuffer(append([]byte(clearScreen), buf.Bytes()...))
				}
				if _, err := out.Write(buf.Bytes()); err != nil {
					return err
				}
				if once {
					return nil
				}
				if !tty {
					fmt.Fprintln(out)
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(interval):
				}
			}
		},
	}
	cmd.Flags().BoolVar(&once, "once", false, "print one table and exit (for scripts)")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "refresh interval")
	return cmd
}

// topOnce fetches a fresh sample and the apps, and writes one screen.
func (c *cli) topOnce(cmd *cobra.Command, w io.Writer) error {
	ctx, cancel := c.ctx(cmd)
	defer cancel()
	cl := c.client()
	t, err := cl.Telemetry(ctx, true)
	if err != nil {
		return err
	}
	if c.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(t.Latest)
	}
	apps, err := cl.Apps(ctx)
	if err != nil {
		return err
	}
	return printTop(w, t.Latest, apps)
}

// printTop writes the host line and the per-app table.
func printTop(w io.Writer, s *client.Sample, apps []client.App) error {
	if s == nil {
		_, err := fmt.Fprintln(w, "No telemetry sample yet; try again in a few seconds.")
		return err
	}
	fmt.Fprintf(w, "%s  cpu %.1f%% of %d cores  load %.2f %.2f %.2f  mem %d/%d MiB\n\n",
		s.Time.Local().Format(time.TimeOnly), s.CPU.Percent, s.CPU.Cores, s.CPU.Load1, s.CPU.Load5, s.CPU.Load15, s.RAM.Used, s.RAM.Total)
	names := map[string]string{}
	ids := []string{}
	for _, a := range apps {
		names[a.ID] = a.Name
		ids = append(ids, a.ID)
	}
	for id := range s.Apps {
		if _, ok := names[id]; !ok {
			ids = append(ids, id)
			names[id] = ""
		}
	}
	if len(ids) == 0 {
		_, err := fmt.Fprintln(w, emptyApps)
		return err
	}
	// Busiest first, then by id.
	slices.SortStableFunc(ids, func(a, b string) int {
		ua, ub := s.Apps[a], s.Apps[b]
		switch {
		case ua.CPUPercent > ub.CPUPercent:
			return -1
		case ua.CPUPercent < ub.CPUPercent:
			return 1
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	})
	tw := newTable(w)
	fmt.Fprintln(tw, "APP\tNAME\tSTATE\tCONTAINERS\tCPU %\tMEMORY")
	for _, id := range ids {
		u, ok := s.Apps[id]
		state := u.State
		if !ok {
			state = "stopped"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%.1f\t%s\n", orDash(id), orDash(names[id]), state,
			u.Running, u.Containers, u.CPUPercent, bytesHuman(u.MemBytes))
	}
	return tw.Flush()
}

// bytesHuman writes a byte count in binary units: 512B, 12.5MiB.
func bytesHuman(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
