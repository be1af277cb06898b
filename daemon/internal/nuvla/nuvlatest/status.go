package nuvlatest

import (
	"reflect"
	"time"
)

// statusServerOnly are maintained by the server; non-admins cannot set them.
var statusServerOnly = []string{
	"online", "online-prev", "last-heartbeat", "next-heartbeat",
	"last-telemetry", "next-telemetry", "resources-prev",
}

var statusEditRules = editRules{
	immutable:       statusServerOnly,
	alwaysImmutable: []string{"parent", "version"},
	check: func(s *Server, c *call, doc map[string]any) error {
		if nb, ok := s.st.get(str(doc["parent"])); ok && str(nb["state"]) == "SUSPENDED" {
			return errNotAllowed("edit", str(doc["id"]))
		}
		return nil
	},
	validate: func(s *Server, c *call, old, doc map[string]any) error {
		if err := validateStatus(doc); err != nil {
			return errSchema(str(doc["id"]), err.Error())
		}
		return nil
	},
	after: func(s *Server, c *call, old, doc map[string]any) (*reply, error) {
		s.afterStatusEdit(c.who, old, doc)
		if c.who.isBox() {
			return okReply(map[string]any{"jobs": s.jobsForBox(str(doc["parent"]))}), nil
		}
		return nil, nil
	},
}

// coeResources checks that coe-resources.docker holds raw Docker Engine API
// list objects (PascalCase keys), with what server-side parameter
// derivation reads from containers.
var coeResources = vMap(map[string]validator{
	"docker": vMap(map[string]validator{
		"containers": vList(0, vMap(map[string]validator{
			"Id": vString, "Image": vString, "ImageID": vString, "Labels": vMap(nil), "Ports": vList(0, vMap(nil)),
			"Mounts": vList(0, vMap(nil)), "NetworkSettings": vMap(map[string]validator{"Networks": vMap(nil)}),
		}, "Id", "Image", "Labels")),
		"images":   vList(0, vMap(map[string]validator{"Id": vString}, "Id")),
		"volumes":  vList(0, vMap(map[string]validator{"Name": vString}, "Name")),
		"networks": vList(0, vMap(map[string]validator{"Id": vString, "Name": vString}, "Id", "Name")),
	}),
})

// statusSchema is the closed schema of nuvlabox-status version 2
// (spec/nuvlabox_status_2.cljc), as far as an edge agent fills it.
var statusSchema = func() map[string]validator {
	withMeta := func(fields map[string]validator) map[string]validator {
		fields["topic"] = vString
		fields["raw-sample"] = vString
		return fields
	}
	cpu := vMap(withMeta(map[string]validator{
		"capacity": vInt(1), "load": vNumber(0), "load-1": vNumber(0), "load-5": vNumber(0),
		"context-switches": vInt(0), "interrupts": vInt(0), "software-interrupts": vInt(0),
		"system-calls": vInt(0),
	}), "capacity", "load")
	// RAM is in MiB (a box has less than 64 TiB); disks are in bytes
	// (agents before 2.18 sent GB: a disk of under 1 MiB is such a mistake).
	ram := vMap(withMeta(map[string]validator{"capacity": vIntRange(1, 64<<20), "used": vIntRange(0, 64<<20)}), "capacity", "used")
	disk := vAll(vMap(withMeta(map[string]validator{"device": vString, "capacity": vInt(1 << 20), "used": vInt(0)}),
		"device", "capacity", "used"), vNotAbove("used", "capacity"))
	netStat := vMap(map[string]validator{"interface": vString, "bytes-received": vInt(0), "bytes-transmitted": vInt(0)},
		"interface", "bytes-received", "bytes-transmitted")
	power := vMap(map[string]validator{"metric-name": vString, "energy-consumption": vNumber(-1e308), "unit": vString},
		"metric-name", "energy-consumption", "unit")
	cstat := vMap(map[string]validator{
		"id": vString, "name": vString, "image": vString, "state": vString, "status": vString,
		"created-at": vTimestamp, "started-at": vTimestamp, "restart-count": vInt(0),
		"cpu-usage": vNumber(0), "cpu-limit": vNumber(0), "cpu-capacity": vNumber(0),
		"mem-usage": vNumber(0), "mem-limit": vNumber(0), "disk-in": vNumber(0), "disk-out": vNumber(0),
		"net-in": vNumber(0), "net-out": vNumber(0),
		"container-status": vString, "cpu-percent": vString, "mem-percent": vString,
		"mem-usage-limit": vString, "net-in-out": vString, "blk-in-out": vString,
	}, "id", "name")
	resources := vMap(map[string]validator{
		"cpu": cpu, "ram": ram, "disks": vList(0, disk), "net-stats": vList(1, netStat),
		"power-consumption": vList(0, power), "container-stats": vList(0, cstat),
	}, "cpu", "ram", "disks")
	ip := vMap(map[string]validator{"address": vString, "type": vEnum("v4", "v6")}, "address")
	network := vMap(map[string]validator{
		"default-gw": vString,
		"ips":        vMap(map[string]validator{"public": vString, "local": vString, "swarm": vString, "vpn": vString}),
		"interfaces": vList(0, vMap(map[string]validator{"interface": vString, "ips": vList(0, ip)}, "interface")),
	})
	install := vMap(map[string]validator{
		"project-name": vString, "working-dir": vString, "config-files": vStrings(0), "environment": vStrings(0),
	})
	vuln := vMap(map[string]validator{
		"summary": vMap(map[string]validator{"total": vInt(0), "affected-products": vStrings(0), "average-score": vNumber(0)}),
		"items": vList(0, vMap(map[string]validator{
			"vulnerability-id": vString, "vulnerability-description": vString, "product": vString,
			"vulnerability-reference": vString, "vulnerability-score": vNumber(0),
		}, "vulnerability-id", "product")),
	})
	location := func(path string, v any) error {
		if err := vList(2, vNumber(-1e308))(path, v); err != nil {
			return err
		}
		if len(v.([]any)) > 3 {
			return schemaErr(path, "must have 2 or 3 coordinates")
		}
		return nil
	}
	f := commonAttrs()
	for k, v := range map[string]validator{
		"version": vInt(0), "parent": vPrefix("nuvlabox/"), "status": vEnum("OPERATIONAL", "DEGRADED", "UNKNOWN"),
		"status-notes": vStrings(0), "current-time": vTimestamp, "resources": resources,
		"operating-system": vString, "architecture": vString, "hostname": vString, "ip": vString,
		"docker-server-version": vString, "kubelet-version": vString, "last-boot": vTimestamp,
		"host-user-home": vString, "network": network, "nuvlabox-engine-version": vString,
		"nuvlabox-api-endpoint": vString, "installation-parameters": install,
		"components": vStrings(1), "container-plugins": vStrings(0), "orchestrator": vEnum("swarm", "kubernetes"),
		"node-id": vString, "cluster-id": vString, "cluster-node-role": vEnum("manager", "worker"),
		"cluster-managers": vStrings(1), "cluster-nodes": vStrings(1), "cluster-join-address": vString,
		"cluster-node-labels":         vList(0, vMap(map[string]validator{"name": vString, "value": vString}, "name")),
		"swarm-node-cert-expiry-date": vString, "swarm-node-id": vString,
		"inferred-location": location,
		"gpio-pins": vList(1, vMap(map[string]validator{
			"pin": vInt(0), "bcm": vInt(0), "name": vString, "mode": vString, "voltage": vInt(0),
		}, "pin")),
		"temperatures":    vList(0, vMap(map[string]validator{"thermal-zone": vString, "value": vNumber(-1e308)})),
		"vulnerabilities": vuln, "coe-resources": coeResources,
		"jobs": vAny, "wifi-password": vString, "comment": vString, "peripherals": vAny,
		"online": vBool, "online-prev": vBool, "last-heartbeat": vTimestamp, "next-heartbeat": vTimestamp,
		"last-telemetry": vTimestamp, "next-telemetry": vTimestamp, "resources-prev": vAny,
	} {
		f[k] = v
	}
	return f
}()

func validateStatus(doc map[string]any) error {
	return closedDoc(doc, statusSchema, "id", "resource-type", "created", "updated", "acl", "version", "parent", "status")
}

// afterStatusEdit applies the server side effects of a status edit.
func (s *Server) afterStatusEdit(who *authn, old, doc map[string]any) {
	nbID := str(doc["parent"])
	nb, ok := s.st.get(nbID)
	now := s.now()
	refresh := intField(nb, "refresh-interval", 60)
	doc["last-telemetry"] = fmtTime(now)
	doc["next-telemetry"] = fmtTime(now.Add(time.Duration(refresh+30) * time.Second))
	if res, ok := old["resources"]; ok && !reflect.DeepEqual(res, doc["resources"]) {
		doc["resources-prev"] = res
	}
	if ok && who.isBox() && !containsStr(strList(nb["capabilities"]), "NUVLA_HEARTBEAT") {
		// Legacy boxes without the heartbeat action are kept online by telemetry.
		doc["online-prev"] = doc["online"] == true
		doc["online"] = true
		doc["next-heartbeat"] = fmtTime(now.Add(time.Duration(2*refresh+10) * time.Second))
	}
	s.save(doc)
	s.history[nbID] = append(s.history[nbID], clone(doc))
	if !ok {
		return
	}
	changed := false
	for _, k := range []string{"online", "nuvlabox-engine-version", "inferred-location"} {
		if v, present := doc[k]; present && !reflect.DeepEqual(nb[k], v) {
			nb[k] = v
			changed = true
		}
	}
	if changed {
		s.save(nb) // denormalised fields do not bump updated
	}
	if !s.opts.NoDeploymentStateJobs {
		s.deploymentStateJobs(nbID, doc)
	}
}

// deploymentStateJobs creates a deployment_state job per STARTED/UPDATED
// deployment of the box when the status has no docker coe-resources, unless
// one is already pending (api-server #994).
func (s *Server) deploymentStateJobs(nbID string, status map[string]any) {
	if docker := mapOf(mapOf(status["coe-resources"])["docker"]); len(docker) > 0 {
		return
	}
	for _, dep := range s.st.ofType("deployment") {
		if str(dep["nuvlabox"]) != nbID || !containsStr([]string{"STARTED", "UPDATED"}, str(dep["state"])) {
			continue
		}
		depID := str(dep["id"])
		pending := false
		for _, j := range s.st.ofType("job") {
			if str(j["action"]) == "deployment_state" && str(mapOf(j["target-resource"])["href"]) == depID &&
				!isFinalJobState(str(j["state"])) {
				pending = true
				break
			}
		}
		if !pending {
			s.createJob(jobSpec{target: depID, action: "deployment_state", mode: str(dep["execution-mode"]),
				priority: 999, box: nbID}, adminAuthn)
		}
	}
}

// StatusHistory returns every nuvlabox-status document the server accepted
// for the box, oldest first.
func (s *Server) StatusHistory(boxID string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, d := range s.history[boxID] {
		out = append(out, export(d))
	}
	return out
}

// statusMetadata is GET /api/resource-metadata/nuvlabox-status-2, reduced
// to what agents probe for.
func statusMetadata() map[string]any {
	item := func(children ...any) map[string]any {
		return map[string]any{"name": "item", "child-types": children}
	}
	return map[string]any{
		"id":            "resource-metadata/nuvlabox-status-2",
		"resource-type": "resource-metadata",
		"type-uri":      "nuvlabox-status-2",
		"attributes": []any{
			map[string]any{"name": "coe-resources"},
			map[string]any{"name": "resources", "child-types": []any{
				map[string]any{"name": "container-stats", "child-types": []any{
					item(map[string]any{"name": "cpu-usage"}),
				}},
			}},
			map[string]any{"name": "network", "child-types": []any{
				map[string]any{"name": "interfaces", "child-types": []any{
					item(map[string]any{"name": "ips", "child-types": []any{
						item(map[string]any{"name": "type"}),
					}}),
				}},
			}},
		},
	}
}
