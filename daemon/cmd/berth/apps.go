package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-edge/berth/daemon/client"
)

// emptyApps is what `berth apps` says when there are none.
const emptyApps = "No apps yet. Apps started from Nuvla or launched here appear in this list."

func (c *cli) appsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "apps [ID]",
		Short: "List the apps on this box, or show one in detail",
		Args:  cobra.MaximumNArgs(1),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
			defer cancel()
			apps, err := c.client().Apps(ctx)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []cobra.Completion
			for _, a := range apps {
				out = append(out, cobra.CompletionWithDesc(a.ID, clean(a.Name)))
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := c.ctx(cmd)
			defer cancel()
			out := cmd.OutOrStdout()
			if len(args) == 1 {
				if c.json {
					return c.printRaw(ctx, out, "/api/v1/apps/"+url.PathEscape(args[0]))
				}
				a, err := c.client().App(ctx, args[0])
				if err != nil {
					return err
				}
				return printApp(out, a, c.now())
			}
			if c.json {
				return c.printRaw(ctx, out, "/api/v1/apps")
			}
			apps, err := c.client().Apps(ctx)
			if err != nil {
				return err
			}
			return printApps(out, apps, c.now())
		},
	}
}

// printApps writes the apps table.
func printApps(out io.Writer, apps []client.App, now time.Time) error {
	if len(apps) == 0 {
		_, err := fmt.Fprintln(out, emptyApps)
		return err
	}
	tw := newTable(out)
	fmt.Fprintln(tw, "ID\tNAME\tKIND\tSTATE\tSERVICES\tPORTS\tAGE")
	for _, a := range apps {
		ports := strings.Join(servicePorts(a.Services...), ",")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", orDash(a.ID), orDash(a.Name), orDash(a.Kind),
			appState(a), servicesSummary(a), orDash(ports), age(now, a.Created))
	}
	return tw.Flush()
}

// printApp writes one app in detail.
func printApp(out io.Writer, a client.App, now time.Time) error {
	tw := newTable(out)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("ID", orDash(a.ID))
	row("Name", orDash(a.Name))
	row("Kind", orDash(a.Kind))
	row("Source", orDash(a.Source))
	if a.Owner != "" {
		row("Owner", clean(a.Owner))
	}
	row("State", appState(a))
	if a.DeploymentID != "" {
		row("Deployment", clean(a.DeploymentID))
	}
	if !a.Created.IsZero() {
		row("Created", a.Created.Local().Format(time.DateTime)+" ("+ago(now, a.Created)+")")
	}
	for _, k := range slices.Sorted(maps.Keys(a.URLs)) {
		row("URL "+clean(k), clean(a.URLs[k]))
	}
	for _, k := range slices.Sorted(maps.Keys(a.Params)) {
		row("Param "+clean(k), clean(a.Params[k]))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(a.Services) == 0 {
		_, err := fmt.Fprintln(out, "\nNo services.")
		return err
	}
	fmt.Fprintln(out, "\nServices:")
	tw = newTable(out)
	fmt.Fprintln(tw, "NAME\tIMAGE\tSTATE\tSTATUS\tPORTS\tCONTAINER")
	for _, s := range a.Services {
		cid := s.ContainerID
		if len(cid) > 12 {
			cid = cid[:12]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", orDash(s.Name), orDash(s.Image), orDash(s.State),
			orDash(s.Status), orDash(strings.Join(servicePorts(s), ",")), orDash(cid))
	}
	return tw.Flush()
}
