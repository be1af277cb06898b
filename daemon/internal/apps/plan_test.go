package apps

import (
	"fmt"
	"reflect"
	"testing"
)

func testApp(services ...Service) *App {
	return &App{ID: "d1", Kind: KindNuvlaComponent, Services: services}
}

func svc(name, image string, restart string) Service {
	return Service{Name: name, Image: image, Restart: RestartPolicy{Condition: restart}}
}

func ctr(id string, s Service, state string) Container {
	return Container{ID: id, Name: ContainerName("d1", s.Name), AppID: "d1", Service: s.Name, SpecHash: s.SpecHash(), State: state}
}

// summary renders actions compactly so table failures read well.
func summary(as []Action) []string {
	out := []string{}
	for _, a := range as {
		out = append(out, fmt.Sprintf("%s %s %s", a.Type, a.Service, a.ContainerID))
	}
	return out
}

func TestPlan(t *testing.T) {
	web := svc("web", "img:1", RestartAny)
	webV2 := svc("web", "img:2", RestartAny)
	job := svc("job", "img:1", RestartNone)
	db := svc("db", "db:1", RestartOnFailure)

	tests := []struct {
		name    string
		desired *App
		actual  []Container
		mode    Mode
		want    []string
	}{
		{"fresh app creates and starts every service", testApp(web, db), nil, ModeStart,
			[]string{"create web ", "create db ", "start web ", "start db "}},
		{"running app with current spec needs nothing", testApp(web), []Container{ctr("c1", web, StateRunning)}, ModeStart,
			[]string{}},
		{"changed spec recreates the service", testApp(webV2), []Container{ctr("c1", web, StateRunning)}, ModeStart,
			[]string{"remove web c1", "create web ", "start web "}},
		{"created container is started", testApp(web), []Container{ctr("c1", web, StateCreated)}, ModeResync,
			[]string{"start web c1"}},
		{"explicit start restarts an exited one-shot", testApp(job), []Container{ctr("c1", job, StateExited)}, ModeStart,
			[]string{"start job c1"}},
		{"resync leaves a finished one-shot alone", testApp(job), []Container{ctr("c1", job, StateExited)}, ModeResync,
			[]string{}},
		{"resync restarts an exited always-restart service", testApp(web), []Container{ctr("c1", web, StateExited)}, ModeResync,
			[]string{"start web c1"}},
		{"resync recreates a missing container", testApp(web, db), []Container{ctr("c1", web, StateRunning)}, ModeResync,
			[]string{"create db ", "start db "}},
		{"duplicates are removed, the running one kept", testApp(web),
			[]Container{ctr("c1", web, StateExited), ctr("c2", web, StateRunning)}, ModeStart,
			[]string{"remove web c1"}},
		{"containers of dropped services are removed", testApp(web),
			[]Container{ctr("c1", web, StateRunning), ctr("c2", db, StateRunning)}, ModeStart,
			[]string{"remove db c2"}},
		{"nil app removes everything", nil,
			[]Container{ctr("c1", web, StateRunning), ctr("c2", db, StateExited)}, ModeStart,
			[]string{"remove db c2", "remove web c1"}},
		{"dead container is replaced", testApp(web), []Container{ctr("c1", web, "dead")}, ModeResync,
			[]string{"remove web c1", "create web ", "start web "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := summary(Plan(tt.desired, tt.actual, tt.mode))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Plan() = %q, want %q", got, tt.want)
			}
		})
	}
}

// Applying a plan and planning again must give nothing: the planner converges.
func TestPlanConverges(t *testing.T) {
	web := svc("web", "img:1", RestartAny)
	db := svc("db", "db:1", RestartOnFailure)
	app := testApp(web, db)
	actual := []Container{ctr("old", svc("web", "img:0", RestartAny), StateRunning), ctr("gone", svc("cache", "c:1", RestartAny), StateRunning)}

	n := 0
	for _, a := range Plan(app, actual, ModeStart) {
		switch a.Type {
		case ActionRemove:
			for i := range actual {
				if actual[i].ID == a.ContainerID {
					actual = append(actual[:i], actual[i+1:]...)
					break
				}
			}
		case ActionCreate:
			n++
			actual = append(actual, ctr(fmt.Sprintf("new%d", n), *app.Service(a.Service), StateCreated))
		case ActionStart:
			for i := range actual {
				if actual[i].Service == a.Service && actual[i].SpecHash == app.Service(a.Service).SpecHash() {
					actual[i].State = StateRunning
				}
			}
		}
	}
	if again := Plan(app, actual, ModeStart); len(again) != 0 {
		t.Fatalf("second plan is not empty: %q", summary(again))
	}
}

func TestPlanDoesNotReorderInput(t *testing.T) {
	web := svc("web", "img:1", RestartAny)
	actual := []Container{{ID: "b", Name: "z", Service: "x"}, {ID: "a", Name: "a", Service: "y"}}
	Plan(testApp(web), actual, ModeStart)
	if actual[0].ID != "b" {
		t.Fatalf("Plan reordered its input: %v", actual)
	}
}

func TestSpecHashIgnoresPortOrder(t *testing.T) {
	a := Service{Name: "w", Image: "i", Ports: []Port{{Target: 80, Protocol: "tcp"}, {Target: 53, Protocol: "udp"}}}
	b := Service{Name: "w", Image: "i", Ports: []Port{{Target: 53, Protocol: "udp"}, {Target: 80, Protocol: "tcp"}}}
	if a.SpecHash() != b.SpecHash() {
		t.Fatal("port order changed the spec hash")
	}
	b.Env = map[string]string{"A": "1"}
	if a.SpecHash() == b.SpecHash() {
		t.Fatal("env change did not change the spec hash")
	}
}
