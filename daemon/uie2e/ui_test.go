package uie2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/docker/docker/api/types/image"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/engine/enginetest"
	"github.com/berth-edge/berth/daemon/internal/engine/registrytest"
	"github.com/berth-edge/berth/daemon/internal/nuvla/nuvlatest"
)

// webAdmin makes the web listener act for uid 4242 (no passwd entry: its
// own group), an admin through admin-group 4242: sessions never run as
// root, and activating the box needs an admin.
const webAdmin = "[sessions]\nweb-user = \"4242\"\nadmin-group = \"4242\"\n"

func skipShort(t testing.TB) {
	if testing.Short() {
		t.Skip("browser end-to-end test: skipped with -short")
	}
}

// TestUIStatusTelemetryAndKeyboard opens the UI of a standalone berthd:
// the empty Apps view says what to do, the number keys switch views, the
// Box view shows the standalone link and the activation form, and the
// telemetry charts fill from the events stream.
func TestUIStatusTelemetryAndKeyboard(t *testing.T) {
	skipShort(t)
	enginetest.Docker(t)
	ctx := browser(t)
	d := startBerthd(t, webAdmin)
	p := open(t, ctx, d.base, d.token, "apps")

	p.waitJS("the apps list loaded", `document.getElementById("apps-loading").hidden`, 20*time.Second)
	if !d.has("/api/v1/session") {
		p.waitJS("the empty state", `!document.getElementById("apps-empty").hidden`, 10*time.Second)
		if got := p.text("#apps-empty"); !strings.Contains(got, "Launch") {
			t.Errorf("empty state = %q", got)
		}
	}
	p.screenshot("apps-empty")

	// Keyboard: 3 opens Box, 4 Telemetry, 1 Apps; the nav marks the view.
	p.run(chromedp.Focus(chromedp.CSS("#main")))
	p.key("3")
	p.waitJS("the Box view", `!document.getElementById("view-box").hidden && document.querySelector('#nav a[aria-current="page"]').dataset.view === "box"`, 5*time.Second)
	p.waitJS("the status", `document.getElementById("st-state").textContent === "standalone"`, 10*time.Second)
	p.waitJS("the activation form", `!document.getElementById("activate-card").hidden`, 5*time.Second)
	p.screenshot("box-standalone")

	p.key("4")
	p.waitJS("a telemetry chart", `document.querySelector("#chart-cpu .chart-value").textContent.endsWith("%")`, 30*time.Second)
	p.waitJS("memory", `document.querySelector("#chart-ram .chart-sub").textContent.includes(" of ")`, 5*time.Second)
	if *updateScreenshots {
		// A few samples (one every 10 s) make the picture for the docs.
		p.waitJS("four samples", `parseInt(document.getElementById("tm-updated").textContent.split("·")[1]) >= 4`, 90*time.Second)
	}
	p.screenshot("telemetry")

	// Tab reaches the nav links with a visible focus ring.
	p.key("1")
	p.run(chromedp.Focus(chromedp.CSS(`#nav a[data-view="launch"]`)))
	outline := eval[string](p, `getComputedStyle(document.activeElement).outlineStyle`)
	if outline == "none" {
		t.Errorf("a focused nav link has no outline")
	}
	if errs := p.errors(); len(errs) > 0 {
		t.Errorf("page errors: %v", errs)
	}
}

// TestUILaunchLogsAndStop launches a contributed session from the Launch
// view, sees it in Apps, follows its logs and stops it.
func TestUILaunchLogsAndStop(t *testing.T) {
	skipShort(t)
	enginetest.Docker(t)
	ctx := browser(t)
	img := enginetest.BuildContributedImage(t, enginetest.ContributedImage)
	d := startBerthd(t, webAdmin)
	if !d.has("/api/v1/session") {
		t.Skip("this berthd serves no sessions API yet")
	}
	p := open(t, ctx, d.base, d.token, "launch")

	if d.has("/api/v1/image") {
		p.run(chromedp.Click(chromedp.CSS(`#launch-types button[data-type="contributed"]`)))
		p.waitJS("the image in the catalog", `[...document.getElementById("launch-image").options].some(o => o.value === `+jsString(img)+`)`, 60*time.Second)
		p.run(chromedp.SetValue(chromedp.CSS("#launch-image"), img))
		eval[bool](p, `(() => { const n = document.getElementById("launch-name"); n.value = "ui-e2e"; n.dispatchEvent(new Event("input")); return true })()`)
		p.run(chromedp.Click(chromedp.CSS("#launch-submit")))
		p.waitJS("the launch progress", `!document.getElementById("launch-progress").hidden`, 10*time.Second)
		p.waitJS("the session running", `document.getElementById("lp-status").textContent === "Running"`, 90*time.Second)
		p.screenshot("launch")
	} else {
		// No catalog in this berthd: launch through the web listener's
		// API (as the page would) and follow the rest in the page.
		t.Log("this berthd serves no catalog (GET /api/v1/image): launching through the API")
		lctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err := client.NewHTTP(d.base, d.token).Launch(lctx, client.LaunchRequest{Name: "ui-e2e", Image: img, Type: client.TypeContributed})
		cancel()
		if err != nil {
			t.Fatalf("launch: %v", err)
		}
	}

	sessions, err := d.Client().Sessions(context.Background(), client.SessionFilter{})
	if err != nil || len(sessions) != 1 {
		t.Fatalf("sessions = %+v, %v", sessions, err)
	}
	id := sessions[0].ID
	t.Cleanup(func() { _ = d.Client().Delete(context.Background(), id) })

	// Apps shows it, with its connect button.
	p.key("Escape")
	p.run(chromedp.Focus(chromedp.CSS("#main")))
	p.key("1")
	row := `document.querySelector('#apps-body tr[data-key="s:` + id + `"]')`
	p.waitJS("the session in Apps", row+` && `+row+`.textContent.includes("Running")`, 15*time.Second)
	p.waitJS("the Open button", `!`+row+`.querySelector('[data-act="open"]').hidden`, 10*time.Second)
	p.screenshot("apps")

	// Logs: the testapp's start-up line.
	p.run(chromedp.Click(chromedp.CSS(`tr[data-key="s:` + id + `"] button[data-act="logs"]`)))
	p.waitJS("the session's output", `document.getElementById("logs-out").textContent.includes("testapp")`, 30*time.Second)
	p.screenshot("logs")

	// Stop: the dialog confirms with Enter; the row goes away.
	p.key("1")
	p.waitJS("Apps again", `!document.getElementById("view-apps").hidden`, 5*time.Second)
	p.run(chromedp.Click(chromedp.CSS(`tr[data-key="s:` + id + `"] button[data-act="stop"]`)))
	p.waitJS("the dialog", `document.getElementById("confirm").open`, 5*time.Second)
	p.key("\r")
	p.waitJS("the session gone", `!`+row, 60*time.Second)
	if errs := p.errors(); len(errs) > 0 {
		t.Errorf("page errors: %v", errs)
	}
}

// TestUIActivatesBox links a standalone berthd to nuvlatest from the Box
// view and watches it come online.
func TestUIActivatesBox(t *testing.T) {
	skipShort(t)
	enginetest.Docker(t)
	ctx := browser(t)
	cp, err := nuvlatest.New(nuvlatest.Options{Addr: "127.0.0.1:0", RefreshInterval: 1, HeartbeatInterval: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cp.Close)
	box := cp.CreateNuvlabox("ui-e2e")
	d := startBerthd(t, webAdmin)
	p := open(t, ctx, d.base, d.token, "box")
	p.waitJS("the activation form", `!document.getElementById("activate-card").hidden`, 15*time.Second)

	// Bad input is refused in the page, with a message.
	p.run(chromedp.Click(chromedp.CSS("#act-submit")))
	p.waitJS("the endpoint error", `document.getElementById("act-error").textContent.includes("endpoint")`, 5*time.Second)

	p.run(
		chromedp.SendKeys(chromedp.CSS("#act-endpoint"), cp.URL()),
		chromedp.SendKeys(chromedp.CSS("#act-id"), box),
		chromedp.Click(chromedp.CSS("#act-submit")),
	)
	var msg string
	deadline := time.Now().Add(60 * time.Second)
	for {
		if eval[bool](p, `document.getElementById("st-state").textContent === "online" && document.getElementById("st-online").textContent.startsWith("online")`) {
			break
		}
		msg = p.text("#act-error")
		if strings.Contains(msg, "no such route") {
			t.Skip("this berthd cannot be activated from the local API yet (POST /api/v1/nuvla)")
		}
		if time.Now().After(deadline) {
			t.Fatalf("box never online: state %q, link %q, error %q", p.text("#st-state"), p.text("#st-online"), msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := p.text("#st-box"); !strings.Contains(got, box) {
		t.Errorf("box fact = %q", got)
	}
	p.waitJS("the form hidden once linked", `document.getElementById("activate-card").hidden`, 5*time.Second)
	p.waitJS("a heartbeat", `!document.getElementById("st-heartbeat").textContent.startsWith("never")`, 10*time.Second)
	p.screenshot("box")
	if doc, _ := cp.Resource(box); doc["state"] != "COMMISSIONED" {
		t.Errorf("nuvlabox state = %v", doc["state"])
	}
}

// TestUILaunchPullsFromRegistry launches an image the catalog lists from a
// private registry (a real one, with the credential stored through the
// API): the Launch view shows the pull from the events stream, then the
// session running.
func TestUILaunchPullsFromRegistry(t *testing.T) {
	skipShort(t)
	docker := enginetest.Docker(t)
	ctx := browser(t)
	img := enginetest.BuildContributedImage(t, enginetest.ContributedImage)
	reg := registrytest.Start(t, "puller", "s3cret-pw")
	remote := reg.Ref("astro/contrib:1.0")
	reg.Push(t, docker, img, remote)
	rmctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	_, err := docker.ImageRemove(rmctx, remote, image.RemoveOptions{})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	d := startBerthd(t, webAdmin+"\n[[catalog.registry]]\nname = \"e2e\"\nurl = \"http://"+reg.Host()+"\"\nkind = \"registry\"\ncredential = \"e2e\"\n")
	if !d.has("/api/v1/session") || !d.has("/api/v1/image") {
		t.Skip("this berthd serves no sessions or catalog API yet")
	}
	pctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err = d.Client().PutRegistry(pctx, "e2e", client.RegistryCredential{Server: reg.Host(), Username: "puller", Password: "s3cret-pw"})
	cancel()
	if err != nil {
		t.Fatalf("storing the credential: %v", err)
	}

	p := open(t, ctx, d.base, d.token, "launch")
	p.run(chromedp.Click(chromedp.CSS(`#launch-types button[data-type="contributed"]`)))
	p.waitJS("the registry's image in the catalog", `[...document.getElementById("launch-image").options].some(o => o.value === `+jsString(remote)+`)`, 90*time.Second)
	p.run(chromedp.SetValue(chromedp.CSS("#launch-image"), remote))
	// Record every progress line the page shows.
	eval[bool](p, `(() => {
		window.__details = [];
		new MutationObserver(() => window.__details.push(document.getElementById("lp-detail").textContent))
			.observe(document.getElementById("lp-detail"), {childList: true, characterData: true, subtree: true});
		return true;
	})()`)
	p.run(chromedp.Click(chromedp.CSS("#launch-submit")))
	p.waitJS("the session running", `document.getElementById("lp-status").textContent === "Running"`, 120*time.Second)
	details := eval[[]string](p, `window.__details`)
	sessions, err := d.Client().Sessions(context.Background(), client.SessionFilter{})
	if err == nil && len(sessions) == 1 {
		id := sessions[0].ID
		t.Cleanup(func() { _ = d.Client().Delete(context.Background(), id) })
	}
	pulled := false
	for _, s := range details {
		if strings.Contains(s, "Pulling "+remote) || strings.Contains(s, "Image pulled") {
			pulled = true
		}
	}
	if !pulled {
		t.Errorf("the page never showed the pull; progress lines: %q", details)
	}
	if _, err := docker.ImageInspect(context.Background(), remote); err != nil {
		t.Errorf("the image was not pulled: %v", err)
	}
}
