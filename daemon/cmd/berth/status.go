package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-edge/berth/daemon/client"
)

func (c *cli) statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show berthd's state, its Docker engine and its link to Nuvla",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := c.ctx(cmd)
			defer cancel()
			if c.json {
				return c.printRaw(ctx, cmd.OutOrStdout(), "/api/v1/status")
			}
			st, err := c.client().Status(ctx)
			if err != nil {
				return err
			}
			return printStatus(cmd.OutOrStdout(), st, c.now())
		},
	}
}

// printStatus writes the human summary of st.
func printStatus(out io.Writer, st client.Status, now time.Time) error {
	tw := newTable(out)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }

	berthd := orDash(st.Version)
	if !st.Started.IsZero() {
		berthd += ", up " + human(now.Sub(st.Started))
	}
	row("berthd", berthd)
	row("Mode", orDash(st.Mode))
	state := orDash(st.State)
	if !st.Since.IsZero() {
		state += " (for " + human(now.Sub(st.Since)) + ")"
	}
	if st.Message != "" {
		state += ": " + clean(st.Message)
	}
	row("State", state)

	d := st.Docker
	if d.Connected {
		v := "connected"
		if d.Version != "" {
			v += ", Docker " + clean(d.Version)
		}
		if d.APIVersion != "" {
			v += " (API " + clean(d.APIVersion) + ")"
		}
		row("Docker", v)
	} else {
		v := "not connected"
		if d.Error != "" {
			v += ": " + clean(d.Error)
		}
		row("Docker", v)
	}

	if n := st.Nuvla; n == nil {
		row("Nuvla", "none (standalone)")
	} else {
		row("Nuvla", orDash(n.Endpoint))
		box := orDash(n.NuvlaboxID)
		if n.BoxState != "" {
			box += " (" + clean(n.BoxState) + ")"
		}
		row("Box", box)
		var link string
		if n.Online {
			link = "online, last heartbeat " + ago(now, n.LastHeartbeat)
		} else {
			link = "offline"
			if !n.OfflineSince.IsZero() {
				link += " for " + human(now.Sub(n.OfflineSince))
			}
			link += ", last heartbeat " + ago(now, n.LastHeartbeat)
		}
		if n.LastError != "" {
			link += ": " + clean(n.LastError)
		}
		row("Link", link)
	}
	row("Apps", appCounts(st.Apps))
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(st.Jobs) == 0 {
		_, err := fmt.Fprintln(out, "\nNo recent jobs.")
		return err
	}
	fmt.Fprintln(out, "\nRecent jobs:")
	tw = newTable(out)
	fmt.Fprintln(tw, "ID\tACTION\tTARGET\tSTATE\tRC\tUPDATED\tMESSAGE")
	for _, j := range st.Jobs {
		t := j.Updated
		if t.IsZero() {
			t = j.Received
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", orDash(j.ID), orDash(j.Action), orDash(j.Target),
			orDash(j.State), j.ReturnCode, ago(now, t), clean(j.Message))
	}
	return tw.Flush()
}

// appCounts writes {"running":2,"stopped":1} as "2 running, 1 stopped".
func appCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%d %s", m[k], clean(k)))
	}
	return strings.Join(parts, ", ")
}
