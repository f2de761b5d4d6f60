// Package validate checks the deployment files in deploy/ offline, so CI can
// catch a broken manifest without a cluster, a Docker engine or a network:
//
//   - deploy/k8s/*.yaml: every document is strictly decoded (duplicate keys,
//     unknown fields and wrong types fail) into the real k8s.io/api types,
//     then checked against the production requirements (replicas, probes,
//     security context, resources, HPA, PDB, selectors, STEPUP_* settings).
//   - deploy/compose/compose.yaml: loaded with compose-go, the library behind
//     `docker compose config` (schema validation, interpolation, merges),
//     then checked for the three-replica topology on a MongoDB replica set.
//   - deploy/Dockerfile: parsed with BuildKit's own Dockerfile parser and
//     instruction parser, then checked for a static, non-root, distroless
//     image built with -tags noembed.
//   - deploy/compose/nginx.conf: a text check of the upstreams.
//
// The known STEPUP_* settings are read from the settings table in
// cmd/stepup/config.go, so a renamed or removed setting breaks these checks
// instead of silently shipping a manifest the binary ignores.
//
// kubeconform is deliberately not run: it validates against JSON schemas it
// downloads (or needs vendored), so it cannot work fully offline here; strict
// decoding into k8s.io/api types covers field names and types instead.
//
// Run with: cd deploy/validate && go test ./...
package validate
