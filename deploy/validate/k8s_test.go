package validate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// k8sKinds are the kinds deploy/k8s may use, by "apiVersion kind".
var k8sKinds = map[string]func() any{
	"apps/v1 Deployment":                     func() any { return new(appsv1.Deployment) },
	"v1 Service":                             func() any { return new(corev1.Service) },
	"v1 ConfigMap":                           func() any { return new(corev1.ConfigMap) },
	"v1 Secret":                              func() any { return new(corev1.Secret) },
	"autoscaling/v2 HorizontalPodAutoscaler": func() any { return new(autoscalingv2.HorizontalPodAutoscaler) },
	"policy/v1 PodDisruptionBudget":          func() any { return new(policyv1.PodDisruptionBudget) },
}

// manifests are the decoded documents of deploy/k8s, by kind.
type manifests struct {
	Deployments []*appsv1.Deployment
	Services    []*corev1.Service
	ConfigMaps  []*corev1.ConfigMap
	Secrets     []*corev1.Secret
	HPAs        []*autoscalingv2.HorizontalPodAutoscaler
	PDBs        []*policyv1.PodDisruptionBudget
}

// decodeK8s strictly decodes one YAML document into its k8s.io/api type; it
// returns nil, nil for an empty document. YAMLToJSONStrict refuses duplicate
// keys; sigs.k8s.io/json (the decoder of the API server and kubectl) is case
// sensitive, unlike encoding/json, and refuses unknown fields, duplicate
// fields and wrong types.
func decodeK8s(doc []byte) (any, error) {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, err
	}
	if t := bytes.TrimSpace(j); len(t) == 0 || string(t) == "null" {
		return nil, nil
	}
	var tm metav1.TypeMeta
	if err := kjson.UnmarshalCaseSensitivePreserveInts(j, &tm); err != nil {
		return nil, err
	}
	if tm.APIVersion == "" || tm.Kind == "" {
		return nil, errors.New("apiVersion and kind are required")
	}
	mk, ok := k8sKinds[tm.APIVersion+" "+tm.Kind]
	if !ok {
		return nil, fmt.Errorf("unexpected %s %s (allowed: apps/v1 Deployment, v1 Service/ConfigMap/Secret, autoscaling/v2 HorizontalPodAutoscaler, policy/v1 PodDisruptionBudget)", tm.APIVersion, tm.Kind)
	}
	obj := mk()
	strictErrs, err := kjson.UnmarshalStrict(j, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	if len(strictErrs) > 0 {
		return nil, fmt.Errorf("%s: %w", tm.Kind, errors.Join(strictErrs...))
	}
	return obj, nil
}

// loadK8s decodes every document of deploy/k8s/*.yaml.
func loadK8s(t testing.TB) *manifests {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "deploy", "k8s", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no deploy/k8s/*.yaml (%v)", err)
	}
	m := &manifests{}
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(f))
		for i := 1; ; i++ {
			doc, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: document %d: %v", file, i, err)
			}
			obj, err := decodeK8s(doc)
			if err != nil {
				t.Errorf("%s: document %d: %v", filepath.Base(file), i, err)
				continue
			}
			switch o := obj.(type) {
			case nil:
			case *appsv1.Deployment:
				m.Deployments = append(m.Deployments, o)
			case *corev1.Service:
				m.Services = append(m.Services, o)
			case *corev1.ConfigMap:
				m.ConfigMaps = append(m.ConfigMaps, o)
			case *corev1.Secret:
				m.Secrets = append(m.Secrets, o)
			case *autoscalingv2.HorizontalPodAutoscaler:
				m.HPAs = append(m.HPAs, o)
			case *policyv1.PodDisruptionBudget:
				m.PDBs = append(m.PDBs, o)
			}
		}
		f.Close()
	}
	if t.Failed() {
		t.FailNow()
	}
	return m
}

// secretSettings must come from a Secret, never a ConfigMap or a literal.
var secretSettings = map[string]bool{
	"STEPUP_MASTER_KEY":            true,
	"STEPUP_MONGODB_URI":           true, // carries the database credentials
	"STEPUP_INTROSPECTION_CLIENTS": true,
	"STEPUP_ADMIN_CLIENTS":         true,
}

// checkK8s asserts the production requirements on the decoded manifests.
func checkK8s(m *manifests, known map[string]bool) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	// Object metadata: names and labels the API server would accept.
	var metas []struct {
		kind string
		meta *metav1.ObjectMeta
	}
	add := func(kind string, om *metav1.ObjectMeta) {
		metas = append(metas, struct {
			kind string
			meta *metav1.ObjectMeta
		}{kind, om})
	}
	for _, o := range m.Deployments {
		add("Deployment", &o.ObjectMeta)
	}
	for _, o := range m.Services {
		add("Service", &o.ObjectMeta)
	}
	for _, o := range m.ConfigMaps {
		add("ConfigMap", &o.ObjectMeta)
	}
	for _, o := range m.Secrets {
		add("Secret", &o.ObjectMeta)
	}
	for _, o := range m.HPAs {
		add("HorizontalPodAutoscaler", &o.ObjectMeta)
	}
	for _, o := range m.PDBs {
		add("PodDisruptionBudget", &o.ObjectMeta)
	}
	for _, x := range metas {
		if msgs := validation.IsDNS1123Subdomain(x.meta.Name); len(x.meta.Name) == 0 || len(msgs) > 0 {
			bad("%s %q: invalid name: %v", x.kind, x.meta.Name, msgs)
		}
		badLabels(bad, x.kind+" "+x.meta.Name+" labels", x.meta.Labels)
	}

	for kind, n := range map[string]int{"Deployment": len(m.Deployments), "Service": len(m.Services), "HorizontalPodAutoscaler": len(m.HPAs), "PodDisruptionBudget": len(m.PDBs)} {
		if n != 1 {
			bad("want exactly one %s, got %d", kind, n)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	d, svc, hpa, pdb := m.Deployments[0], m.Services[0], m.HPAs[0], m.PDBs[0]
	pod := &d.Spec.Template
	podLabels := labels.Set(pod.Labels)
	badLabels(bad, "Deployment pod template labels", pod.Labels)

	// Replicas: nil means 1.
	replicas := ptr.Deref(d.Spec.Replicas, 1)
	if replicas < 3 {
		bad("Deployment %s: replicas is %d, want at least 3", d.Name, replicas)
	}

	// Selectors.
	matches := func(what string, sel *metav1.LabelSelector) {
		if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
			bad("%s: empty selector (selects every pod in the namespace)", what)
			return
		}
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			bad("%s: invalid selector: %v", what, err)
			return
		}
		if !s.Matches(podLabels) {
			bad("%s: selector %q does not match the pod labels %v", what, s, podLabels)
		}
	}
	matches("Deployment "+d.Name+" spec.selector", d.Spec.Selector)
	for i, tsc := range pod.Spec.TopologySpreadConstraints {
		matches(fmt.Sprintf("Deployment %s topologySpreadConstraints[%d]", d.Name, i), tsc.LabelSelector)
	}
	if len(svc.Spec.Selector) == 0 {
		bad("Service %s: empty selector", svc.Name)
	} else if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
		bad("Service %s: selector %v does not match the pod labels %v", svc.Name, svc.Spec.Selector, podLabels)
	}
	matches("PodDisruptionBudget "+pdb.Name+" selector", pdb.Spec.Selector)
	if pdb.Spec.Selector != nil && d.Spec.Selector != nil {
		if !reflect.DeepEqual(pdb.Spec.Selector, d.Spec.Selector) {
			bad("PodDisruptionBudget %s: selector %q differs from the Deployment's %q", pdb.Name, metav1.FormatLabelSelector(pdb.Spec.Selector), metav1.FormatLabelSelector(d.Spec.Selector))
		}
		if len(pdb.Spec.Selector.MatchExpressions) > 0 || !reflect.DeepEqual(pdb.Spec.Selector.MatchLabels, svc.Spec.Selector) {
			bad("PodDisruptionBudget %s: selector %q differs from the Service's %q", pdb.Name, metav1.FormatLabelSelector(pdb.Spec.Selector), labels.SelectorFromSet(svc.Spec.Selector))
		}
	}

	// Pod security context.
	psc := pod.Spec.SecurityContext
	if psc == nil {
		bad("Deployment %s: pod securityContext missing", d.Name)
		psc = &corev1.PodSecurityContext{}
	}
	if !ptr.Deref(psc.RunAsNonRoot, false) {
		bad("Deployment %s: pod securityContext.runAsNonRoot must be true", d.Name)
	}
	if psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		bad("Deployment %s: pod securityContext.runAsUser is 0 (root)", d.Name)
	}
	if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		bad("Deployment %s: pod securityContext.seccompProfile.type must be RuntimeDefault", d.Name)
	}
	if ptr.Deref(pod.Spec.AutomountServiceAccountToken, true) {
		bad("Deployment %s: automountServiceAccountToken should be false (stepup never calls the API server)", d.Name)
	}
	if pod.Spec.HostNetwork || pod.Spec.HostPID || pod.Spec.HostIPC {
		bad("Deployment %s: host namespaces must not be shared", d.Name)
	}

	// ConfigMaps and Secrets.
	configMaps := map[string]*corev1.ConfigMap{}
	for _, cm := range m.ConfigMaps {
		configMaps[cm.Name] = cm
		for k := range cm.Data {
			if msgs := validation.IsConfigMapKey(k); len(msgs) > 0 {
				bad("ConfigMap %s: key %q: %v", cm.Name, k, msgs)
			}
			if !known[k] {
				bad("ConfigMap %s: %s is not a setting of cmd/stepup/config.go", cm.Name, k)
			}
			if secretSettings[k] {
				bad("ConfigMap %s: %s is a secret and belongs in a Secret", cm.Name, k)
			}
		}
		for k := range cm.BinaryData {
			bad("ConfigMap %s: binaryData %q cannot be used as an environment variable", cm.Name, k)
		}
	}
	secrets := map[string]*corev1.Secret{}
	for _, s := range m.Secrets {
		secrets[s.Name] = s
		if s.Type != "" && s.Type != corev1.SecretTypeOpaque {
			bad("Secret %s: type %s, want Opaque", s.Name, s.Type)
		}
		for _, k := range secretKeys(s) {
			if msgs := validation.IsConfigMapKey(k); len(msgs) > 0 {
				bad("Secret %s: key %q: %v", s.Name, k, msgs)
			}
			if !known[k] {
				bad("Secret %s: %s is not a setting of cmd/stepup/config.go", s.Name, k)
			}
		}
	}

	// Containers.
	if len(pod.Spec.Containers) == 0 {
		bad("Deployment %s: no containers", d.Name)
	}
	for _, c := range pod.Spec.InitContainers {
		checkContainerSecurity(bad, d.Name, psc, &c)
	}
	var cpuRequested bool
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		where := fmt.Sprintf("Deployment %s container %s", d.Name, c.Name)
		if c.Image == "" {
			bad("%s: no image", where)
		}
		checkContainerSecurity(bad, d.Name, psc, c)

		// Resources.
		req, lim := c.Resources.Requests, c.Resources.Limits
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if q, ok := req[r]; !ok || q.Sign() <= 0 {
				bad("%s: resources.requests.%s must be set", where, r)
			}
		}
		if q, ok := lim[corev1.ResourceMemory]; !ok || q.Sign() <= 0 {
			bad("%s: resources.limits.memory must be set", where)
		}
		for r, l := range lim {
			if q, ok := req[r]; ok && q.Cmp(l) > 0 {
				bad("%s: resources.requests.%s %s exceeds its limit %s", where, r, q.String(), l.String())
			}
		}
		if q, ok := req[corev1.ResourceCPU]; ok && q.Sign() > 0 {
			cpuRequested = true
		}

		// Ports and probes.
		ports := map[string]int32{}
		numbers := map[int32]bool{}
		for _, p := range c.Ports {
			if p.Name != "" {
				ports[p.Name] = p.ContainerPort
			}
			numbers[p.ContainerPort] = true
		}
		resolve := func(p intstr.IntOrString) (int32, bool) {
			if p.Type == intstr.String {
				n, ok := ports[p.StrVal]
				return n, ok
			}
			return p.IntVal, numbers[p.IntVal]
		}
		probe := func(name string, pr *corev1.Probe, path string) {
			switch {
			case pr == nil:
				bad("%s: %s missing", where, name)
			case pr.HTTPGet == nil:
				bad("%s: %s must be an httpGet on %s", where, name, path)
			case pr.HTTPGet.Path != path:
				bad("%s: %s path is %q, want %s", where, name, pr.HTTPGet.Path, path)
			default:
				if _, ok := resolve(pr.HTTPGet.Port); !ok {
					bad("%s: %s port %s is not a declared container port", where, name, pr.HTTPGet.Port.String())
				}
			}
		}
		probe("livenessProbe", c.LivenessProbe, "/healthz")
		probe("readinessProbe", c.ReadinessProbe, "/readyz")
		if c.StartupProbe != nil {
			probe("startupProbe", c.StartupProbe, "/healthz")
		}

		// Environment: every name a known setting, secrets from a Secret.
		env := map[string]string{} // name → where it comes from
		for _, e := range c.Env {
			if msgs := validation.IsEnvVarName(e.Name); len(msgs) > 0 {
				bad("%s: env %q: %v", where, e.Name, msgs)
			}
			if !known[e.Name] {
				bad("%s: env %s is not a setting of cmd/stepup/config.go", where, e.Name)
			}
			if secretSettings[e.Name] && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
				bad("%s: env %s is a secret and must come from a secretKeyRef", where, e.Name)
			}
			env[e.Name] = "env"
		}
		// Literal values, env over envFrom as the kubelet does.
		values := map[string]string{}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				values[e.Name] = e.Value
			}
		}
		for _, ef := range c.EnvFrom {
			if ef.Prefix != "" {
				bad("%s: envFrom prefix %q renames the settings", where, ef.Prefix)
			}
			var keys []string
			var from string
			switch {
			case ef.ConfigMapRef != nil:
				from = "ConfigMap " + ef.ConfigMapRef.Name
				cm, ok := configMaps[ef.ConfigMapRef.Name]
				if !ok {
					bad("%s: envFrom refers to %s, which is not in deploy/k8s", where, from)
					continue
				}
				for k := range cm.Data {
					keys = append(keys, k)
				}
				for k, v := range cm.Data {
					if _, set := values[k]; !set {
						values[k] = v
					}
				}
			case ef.SecretRef != nil:
				from = "Secret " + ef.SecretRef.Name
				s, ok := secrets[ef.SecretRef.Name]
				if !ok {
					bad("%s: envFrom refers to %s, which is not in deploy/k8s", where, from)
					continue
				}
				keys = secretKeys(s)
			}
			for _, k := range keys {
				if prev, dup := env[k]; dup && prev != "env" {
					bad("%s: %s is set by both %s and %s (the later one silently wins)", where, k, prev, from)
				}
				if _, dup := env[k]; !dup {
					env[k] = from
				}
			}
		}
		for _, k := range []string{"STEPUP_MASTER_KEY", "STEPUP_MONGODB_URI"} {
			if src, ok := env[k]; !ok {
				bad("%s: %s is not provided (the noembed image refuses to start without it)", where, k)
			} else if k == "STEPUP_MASTER_KEY" && !strings.HasPrefix(src, "Secret ") && src != "env" {
				bad("%s: STEPUP_MASTER_KEY comes from %s, want a Secret", where, src)
			}
		}
		// STEPUP_ADDR, set explicitly (the binary's default is loopback),
		// must listen on a declared container port, which the probes use.
		portOf := func(name string) int32 {
			addr := values[name]
			port, err := listenPort(name, addr)
			if err != nil {
				bad("%s: %v", where, err)
				return 0
			}
			var p int32
			if _, err := fmt.Sscan(port, &p); err != nil || !numbers[p] {
				bad("%s: %s %q listens on a port that is not a declared container port", where, name, addr)
			}
			return p
		}
		var public, admin int32
		if values["STEPUP_ADDR"] == "" {
			bad("%s: STEPUP_ADDR is not set; the binary's default is loopback, which no probe or Service reaches", where)
		} else {
			public = portOf("STEPUP_ADDR")
		}
		for name, pr := range map[string]*corev1.Probe{"livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe, "startupProbe": c.StartupProbe} {
			if pr != nil && pr.HTTPGet != nil && public != 0 {
				if p, ok := resolve(pr.HTTPGet.Port); ok && p != public {
					bad("%s: %s is on port %d, not STEPUP_ADDR's %d (the only listener with /healthz and /readyz)", where, name, p, public)
				}
			}
		}
		// STEPUP_ADMIN_ADDR (/metrics) is for Prometheus, never the Service.
		if a := values["STEPUP_ADMIN_ADDR"]; a != "" && a != "off" {
			if admin = portOf("STEPUP_ADMIN_ADDR"); admin != 0 && admin == public {
				bad("%s: STEPUP_ADMIN_ADDR %q shares STEPUP_ADDR's port", where, a)
			}
		}
		annotations := pod.Annotations
		if annotations["prometheus.io/scrape"] == "true" {
			switch {
			case admin == 0:
				bad("%s: prometheus.io/scrape is true but STEPUP_ADMIN_ADDR sets no reachable operations listener", where)
			case annotations["prometheus.io/port"] != fmt.Sprint(admin):
				bad("%s: prometheus.io/port is %q, want STEPUP_ADMIN_ADDR's port %d (the public listener does not serve /metrics)", where, annotations["prometheus.io/port"], admin)
			}
			if p, ok := annotations["prometheus.io/path"]; ok && p != "/metrics" {
				bad("%s: prometheus.io/path is %q, want /metrics", where, p)
			}
		}

		// The Service must reach a port of this container.
		for _, sp := range svc.Spec.Ports {
			tp := sp.TargetPort
			if tp.Type == intstr.Int && tp.IntVal == 0 {
				tp = intstr.FromInt32(sp.Port)
			}
			if p, ok := resolve(tp); !ok {
				bad("Service %s: port %s targets %s, which is not a port of container %s", svc.Name, sp.Name, tp.String(), c.Name)
			} else if admin != 0 && p == admin {
				bad("Service %s: port %s targets the operations listener (STEPUP_ADMIN_ADDR, /metrics), which must stay private", svc.Name, sp.Name)
			}
		}
	}

	// The Secret provides the master key.
	var masterKey bool
	for _, s := range m.Secrets {
		for _, k := range secretKeys(s) {
			if k == "STEPUP_MASTER_KEY" {
				masterKey = true
			}
		}
	}
	if !masterKey {
		bad("no Secret provides STEPUP_MASTER_KEY")
	}

	// HPA.
	ref := hpa.Spec.ScaleTargetRef
	if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != d.Name {
		bad("HorizontalPodAutoscaler %s: scaleTargetRef is %s %s %q, want apps/v1 Deployment %q", hpa.Name, ref.APIVersion, ref.Kind, ref.Name, d.Name)
	}
	minReplicas := ptr.Deref(hpa.Spec.MinReplicas, 1)
	if minReplicas < 3 {
		bad("HorizontalPodAutoscaler %s: minReplicas is %d, want at least 3", hpa.Name, minReplicas)
	}
	if hpa.Spec.MaxReplicas < minReplicas {
		bad("HorizontalPodAutoscaler %s: maxReplicas %d is below minReplicas %d", hpa.Name, hpa.Spec.MaxReplicas, minReplicas)
	}
	if replicas < minReplicas || replicas > hpa.Spec.MaxReplicas {
		bad("Deployment %s: replicas %d outside the HPA range %d–%d", d.Name, replicas, minReplicas, hpa.Spec.MaxReplicas)
	}
	if len(hpa.Spec.Metrics) == 0 {
		bad("HorizontalPodAutoscaler %s: no metrics", hpa.Name)
	}
	for _, mt := range hpa.Spec.Metrics {
		if mt.Type == autoscalingv2.ResourceMetricSourceType && mt.Resource != nil &&
			mt.Resource.Name == corev1.ResourceCPU && mt.Resource.Target.Type == autoscalingv2.UtilizationMetricType && !cpuRequested {
			bad("HorizontalPodAutoscaler %s: CPU utilization needs a CPU request on the containers", hpa.Name)
		}
	}

	// PDB: it must protect availability yet still let a node drain at the
	// HPA's minimum.
	switch {
	case pdb.Spec.MinAvailable != nil && pdb.Spec.MaxUnavailable != nil:
		bad("PodDisruptionBudget %s: set minAvailable or maxUnavailable, not both", pdb.Name)
	case pdb.Spec.MinAvailable != nil:
		if v := *pdb.Spec.MinAvailable; v.Type == intstr.Int && (v.IntVal < 1 || v.IntVal >= minReplicas) {
			bad("PodDisruptionBudget %s: minAvailable %d must be from 1 to %d (minReplicas − 1)", pdb.Name, v.IntVal, minReplicas-1)
		}
	case pdb.Spec.MaxUnavailable != nil:
		if v := *pdb.Spec.MaxUnavailable; v.Type == intstr.Int && (v.IntVal < 1 || v.IntVal >= minReplicas) {
			bad("PodDisruptionBudget %s: maxUnavailable %d must be from 1 to %d", pdb.Name, v.IntVal, minReplicas-1)
		}
	default:
		bad("PodDisruptionBudget %s: neither minAvailable nor maxUnavailable is set", pdb.Name)
	}
	return errs
}

// checkContainerSecurity asserts the container's effective security context
// (its own fields, falling back on the pod's).
func checkContainerSecurity(bad func(string, ...any), deployment string, psc *corev1.PodSecurityContext, c *corev1.Container) {
	where := fmt.Sprintf("Deployment %s container %s", deployment, c.Name)
	sc := c.SecurityContext
	if sc == nil {
		bad("%s: securityContext missing", where)
		return
	}
	if sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot {
		bad("%s: securityContext.runAsNonRoot is false", where)
	}
	if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
		bad("%s: securityContext.runAsUser is 0 (root)", where)
	}
	if !ptr.Deref(sc.RunAsNonRoot, ptr.Deref(psc.RunAsNonRoot, false)) {
		bad("%s: runAsNonRoot is not true", where)
	}
	if !ptr.Deref(sc.ReadOnlyRootFilesystem, false) {
		bad("%s: securityContext.readOnlyRootFilesystem must be true", where)
	}
	if ptr.Deref(sc.AllowPrivilegeEscalation, true) {
		bad("%s: securityContext.allowPrivilegeEscalation must be false", where)
	}
	if ptr.Deref(sc.Privileged, false) {
		bad("%s: securityContext.privileged must not be true", where)
	}
	dropAll := false
	if sc.Capabilities != nil {
		for _, cp := range sc.Capabilities.Drop {
			dropAll = dropAll || cp == "ALL"
		}
		if len(sc.Capabilities.Add) > 0 {
			bad("%s: securityContext.capabilities.add %v must be empty", where, sc.Capabilities.Add)
		}
	}
	if !dropAll {
		bad("%s: securityContext.capabilities.drop must contain ALL", where)
	}
	seccomp := psc.SeccompProfile
	if sc.SeccompProfile != nil {
		seccomp = sc.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		bad("%s: effective seccompProfile must be RuntimeDefault", where)
	}
}

func badLabels(bad func(string, ...any), what string, l map[string]string) {
	for k, v := range l {
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			bad("%s: key %q: %v", what, k, msgs)
		}
		if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
			bad("%s: value %q: %v", what, v, msgs)
		}
	}
}

// secretKeys are the keys of data and stringData, which the API server merges.
func secretKeys(s *corev1.Secret) []string {
	var keys []string
	for k := range s.Data {
		keys = append(keys, k)
	}
	for k := range s.StringData {
		if _, dup := s.Data[k]; !dup {
			keys = append(keys, k)
		}
	}
	return keys
}

func TestK8sManifests(t *testing.T) {
	m := loadK8s(t)
	if len(m.ConfigMaps) == 0 || len(m.Secrets) == 0 {
		t.Errorf("want a ConfigMap and a Secret, got %d and %d", len(m.ConfigMaps), len(m.Secrets))
	}
	reportProblems(t, "deploy/k8s", checkK8s(m, knownSettings(t)))
}

// TestK8sStrictDecodeRejects proves the decoder is strict: each document
// below is a mistake a lenient decoder (or kubectl apply with
// --validate=false) would let through.
func TestK8sStrictDecodeRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field":      "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replica: 3}\n",
		"wrong type":         "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: \"3\"}\n",
		"wrong case":         "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {Replicas: 3}\n",
		"duplicate key":      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {A: a, A: b}\n",
		"nested unknown":     "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 80, targetport: http}]}\n",
		"bad quantity":       "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {template: {spec: {containers: [{name: c, resources: {limits: {memory: lots}}}]}}}\n",
		"unexpected kind":    "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n",
		"wrong apiVersion":   "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: x}\n",
		"missing apiVersion": "kind: ConfigMap\nmetadata: {name: x}\n",
		"not yaml":           "apiVersion: v1\nkind: [\n",
	} {
		if obj, err := decodeK8s([]byte(doc)); err == nil {
			t.Errorf("%s: decoded without error into %T", name, obj)
		}
	}
	if obj, err := decodeK8s([]byte("# only a comment\n")); obj != nil || err != nil {
		t.Errorf("empty document: got %v, %v", obj, err)
	}
}

// TestK8sChecksCatchMistakes breaks the real manifests one way at a time and
// expects checkK8s to notice, so the checks cannot pass vacuously.
func TestK8sChecksCatchMistakes(t *testing.T) {
	known := knownSettings(t)
	container := func(m *manifests) *corev1.Container { return &m.Deployments[0].Spec.Template.Spec.Containers[0] }
	for _, tc := range []struct {
		name, want string
		breakIt    func(m *manifests)
	}{
		{"two replicas", "replicas is 2", func(m *manifests) { m.Deployments[0].Spec.Replicas = ptr.To[int32](2) }},
		{"default replicas", "replicas is 1", func(m *manifests) { m.Deployments[0].Spec.Replicas = nil }},
		{"liveness path", "livenessProbe path", func(m *manifests) { container(m).LivenessProbe.HTTPGet.Path = "/readyz" }},
		{"no readiness", "readinessProbe missing", func(m *manifests) { container(m).ReadinessProbe = nil }},
		{"probe port", "not a declared container port", func(m *manifests) { container(m).ReadinessProbe.HTTPGet.Port = intstr.FromString("web") }},
		{"root pod", "runAsNonRoot must be true", func(m *manifests) { m.Deployments[0].Spec.Template.Spec.SecurityContext.RunAsNonRoot = nil }},
		{"no seccomp", "RuntimeDefault", func(m *manifests) { m.Deployments[0].Spec.Template.Spec.SecurityContext.SeccompProfile = nil }},
		{"writable root", "readOnlyRootFilesystem", func(m *manifests) { container(m).SecurityContext.ReadOnlyRootFilesystem = nil }},
		{"escalation", "allowPrivilegeEscalation", func(m *manifests) { container(m).SecurityContext.AllowPrivilegeEscalation = ptr.To(true) }},
		{"capabilities", "drop must contain ALL", func(m *manifests) { container(m).SecurityContext.Capabilities = nil }},
		{"no limits", "limits.memory", func(m *manifests) { container(m).Resources.Limits = nil }},
		{"no requests", "requests.cpu", func(m *manifests) { container(m).Resources.Requests = nil }},
		{"hpa min", "minReplicas is 2", func(m *manifests) { m.HPAs[0].Spec.MinReplicas = ptr.To[int32](2) }},
		{"hpa target", "scaleTargetRef", func(m *manifests) { m.HPAs[0].Spec.ScaleTargetRef.Name = "other" }},
		{"pdb selector", "PodDisruptionBudget", func(m *manifests) {
			m.PDBs[0].Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "other"}}
		}},
		{"pdb blocks drains", "minAvailable 3", func(m *manifests) { m.PDBs[0].Spec.MinAvailable = ptr.To(intstr.FromInt32(3)) }},
		{"service selector", "Service stepup: selector", func(m *manifests) { m.Services[0].Spec.Selector = map[string]string{"app": "other"} }},
		{"service port", "targets", func(m *manifests) { m.Services[0].Spec.Ports[0].TargetPort = intstr.FromString("https") }},
		{"pod labels", "does not match the pod labels", func(m *manifests) {
			m.Deployments[0].Spec.Template.Labels = map[string]string{"app": "renamed"}
		}},
		{"unknown setting", "STEPUP_LOGLEVEL is not a setting", func(m *manifests) { m.ConfigMaps[0].Data["STEPUP_LOGLEVEL"] = "debug" }},
		{"unknown secret key", "STEPUP_MASTERKEY is not a setting", func(m *manifests) { m.Secrets[0].StringData["STEPUP_MASTERKEY"] = "x" }},
		{"unknown env", "STEPUP_PORT is not a setting", func(m *manifests) {
			container(m).Env = append(container(m).Env, corev1.EnvVar{Name: "STEPUP_PORT", Value: "8080"})
		}},
		{"secret in configmap", "belongs in a Secret", func(m *manifests) { m.ConfigMaps[0].Data["STEPUP_MASTER_KEY"] = "x" }},
		{"no master key", "no Secret provides STEPUP_MASTER_KEY", func(m *manifests) {
			for _, s := range m.Secrets {
				delete(s.StringData, "STEPUP_MASTER_KEY")
				delete(s.Data, "STEPUP_MASTER_KEY")
			}
		}},
		{"missing secret ref", "not in deploy/k8s", func(m *manifests) {
			for i := range container(m).EnvFrom {
				if r := container(m).EnvFrom[i].SecretRef; r != nil {
					r.Name = "elsewhere"
				}
			}
		}},
		{"addr port", "STEPUP_ADDR", func(m *manifests) {
			container(m).Env = []corev1.EnvVar{{Name: "STEPUP_ADDR", Value: ":9091"}}
		}},
		{"no addr", "STEPUP_ADDR is not set", func(m *manifests) { container(m).Env = nil }},
		{"loopback addr", "loopback", func(m *manifests) {
			container(m).Env = []corev1.EnvVar{{Name: "STEPUP_ADDR", Value: "127.0.0.1:8080"}}
		}},
		{"probe on admin port", "not STEPUP_ADDR's", func(m *manifests) { container(m).LivenessProbe.HTTPGet.Port = intstr.FromString("metrics") }},
		{"scrape public port", "prometheus.io/port", func(m *manifests) {
			m.Deployments[0].Spec.Template.Annotations["prometheus.io/port"] = "8080"
		}},
		{"scrape without admin", "prometheus.io/scrape", func(m *manifests) {
			container(m).Env = []corev1.EnvVar{{Name: "STEPUP_ADDR", Value: ":8080"}, {Name: "STEPUP_ADMIN_ADDR", Value: "off"}}
		}},
		{"admin on public port", "shares STEPUP_ADDR's port", func(m *manifests) {
			container(m).Env = []corev1.EnvVar{{Name: "STEPUP_ADDR", Value: ":8080"}, {Name: "STEPUP_ADMIN_ADDR", Value: ":8080"}}
		}},
		{"service to metrics", "operations listener", func(m *manifests) { m.Services[0].Spec.Ports[0].TargetPort = intstr.FromString("metrics") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := loadK8s(t)
			tc.breakIt(m)
			expectProblem(t, checkK8s(m, known), tc.want)
		})
	}
}
