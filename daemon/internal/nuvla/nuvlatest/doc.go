// Package nuvlatest runs an in-process, Nuvla-compatible control plane for
// tests, in the spirit of net/http/httptest. It is the one fake of the
// project, so it answers the way the real Nuvla api-server (6.19) answers an
// edge agent: same routes under /api/, same JSON bodies, same status codes.
//
//	srv, err := nuvlatest.New(nuvlatest.Options{})
//	defer srv.Close()
//	box := srv.CreateNuvlabox("edge-01")           // state NEW
//	// ... point the agent at srv.URL() and run it ...
//	job, _ := srv.StartDeployment(srv.CreateDeployment(box, module))
//	done, _ := srv.WaitJob(ctx, job)
//
// # Faithful
//
//   - CIMI REST conventions: POST (201 + Location), GET (?select, id always
//     returned, operations that depend on state and rights), PUT = shallow
//     top-level merge with ?select= deleting keys first, RFC-6902 JSON patch
//     on Content-Type application/json-patch+json applied to the stored
//     document (a top-level key removed by a patch survives the merge, as on
//     the real server; use ?select to drop it), gzip request bodies,
//     DELETE, search with filter/select/first/last/orderby via GET or a
//     form-encoded PUT, JSON errors {"status","message","resource-id"}.
//   - The ACL model of com.sixsq.nuvla.auth.acl-resource: owners, the rights
//     hierarchy (edit-acl > edit-data > edit-meta, view-acl > view-data >
//     view-meta, delete, manage), editable and viewable keys, admin bypass.
//   - api-key sessions with an opaque cookie (not Secure, so it travels over
//     http), 403 "credentials required" / "invalid credentials for '<id>'",
//     the nuvla-authn-info header for convenience, secrets in the Nuvla
//     format stored only as a digest.
//   - The nuvlabox state machine (activate without auth, commission,
//     heartbeat only when COMMISSIONED, 409 "operation 'x' not allowed on
//     nuvlabox/U"), activation returning the secret once, commission side
//     effects (capabilities, swarm infrastructure-service and its
//     credential, coe-list), action jobs answered with 202. create-log
//     creates a resource-log (201) and POST resource-log/<L>/fetch creates
//     the fetch_nuvlabox_log job, as on the real server; a deployment's
//     create-log (the owner's, with its service names as components) makes
//     one whose fetch creates fetch_deployment_log. add-ssh-key without a
//     credential generates a well-formed ed25519 public key.
//   - nuvlabox-status: closed schema of nuvlabox_status_2 (unknown top-level
//     key or a null typed value -> 400, required cpu/ram/disks in
//     resources), server-only attributes ignored for non-admins,
//     last/next-telemetry, denormalisation onto the nuvlabox, {"jobs":[..]}
//     answered to the box, 409 when the box is SUSPENDED, and a
//     deployment_state job per STARTED/UPDATED deployment when the stored
//     status carries no coe-resources.docker (unless one is pending).
//   - Jobs shaped like the real ones (version 2, payload as a JSON string,
//     ACL edit-data/manage for the box), returned by every heartbeat and
//     status edit until they reach a final state, 409 "edit is not allowed
//     in final state", started/duration/progress bookkeeping, get-context,
//     cancel, and the stop_deployment on-done hook that deletes the
//     deployment when the payload says delete.
//   - Deployments with per-start api keys (parent deployment/D), the
//     start/stop/update state rules, deployment-parameter ids computed with
//     the uuid3 algorithm (409 on duplicates), edit of value only.
//   - Offline detection: a box whose next-heartbeat has passed goes offline.
//
// # Simplified
//
//   - Everything lives in memory behind one mutex; nothing is persisted.
//   - Schemas are validated only where an edge agent can get them wrong:
//     nuvlabox-status (closed, typed), job edits, deployment state,
//     deployment-parameter, commission keys, nuvlabox intervals. Other
//     resources accept any keys.
//   - Modules are not resolved: a deployment is created from an inline,
//     already resolved module document.
//   - There is no central job engine. Push jobs are never run, except
//     decommission_nuvlabox, which the server completes at once (the box goes
//     straight to DECOMMISSIONED; its keys and status are deleted).
//   - Commission stores capabilities, ssh-keys, the swarm, kubernetes and
//     minio services with their credentials and the swarm tokens; vpn-csr and
//     the cluster-* keys are validated and accepted but produce no VPN
//     credential or nuvlabox-cluster.
//   - Server-side derivation of deployment-parameters from coe-resources,
//     time series, events, notifications, payment and bulk operations are
//     not implemented (bulk DELETE/PATCH answer 405).
//   - Filters implement the CIMI grammar of the api-server except full-text
//     (==, approximated as a case-insensitive substring) and geo operators.
//   - online changes and denormalised fields do not bump the nuvlabox's
//     updated timestamp; user edits, state changes and test hooks do.
//
// Test hooks (CreateNuvlabox, StartDeployment, SetFault, ...) are plain
// method calls that act as the admin or the owner; they never go through
// HTTP and are not affected by injected faults.
package nuvlatest
