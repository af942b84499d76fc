// Package k8scheck checks distq's deployment files offline: every
// Kubernetes manifest decodes strictly into the API types (an unknown field
// or a wrong type fails), every kustomization builds, probes point at
// /healthz and /readyz, and the dashboard and alert rules name only metrics
// distq exports (dashboard_test.go). It is its own module so that the
// service's go.mod does not carry the Kubernetes libraries.
package k8scheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

const k8sDir = "../k8s"

// kinds maps apiVersion/kind to a fresh typed object to decode into.
var kinds = map[string]func() any{
	"v1/ConfigMap":                  func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                     func() any { return &corev1.Secret{} },
	"v1/Service":                    func() any { return &corev1.Service{} },
	"v1/Namespace":                  func() any { return &corev1.Namespace{} },
	"apps/v1/Deployment":            func() any { return &appsv1.Deployment{} },
	"policy/v1/PodDisruptionBudget": func() any { return &policyv1.PodDisruptionBudget{} },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return &monitoringv1.ServiceMonitor{} },
	"monitoring.coreos.com/v1/PrometheusRule": func() any { return &monitoringv1.PrometheusRule{} },
}

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// splitDocs splits a YAML stream on document separators, dropping empty
// documents (comments only).
func splitDocs(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(append([]byte("\n"), data...), []byte("\n---")) {
		var m map[string]any
		if err := yaml.Unmarshal(d, &m); err == nil && len(m) == 0 {
			continue
		}
		docs = append(docs, d)
	}
	return docs
}

// unmarshalStrict decodes YAML into v the way the API server decodes
// JSON: field names match case-sensitively, and an unknown field, a
// duplicate field or a wrong type is an error.
func unmarshalStrict(doc []byte, v any) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strictErrs, err := sigsjson.UnmarshalStrict(js, v)
	if err != nil {
		return err
	}
	if len(strictErrs) > 0 {
		return errors.Join(strictErrs...)
	}
	return nil
}

// decodeStrict decodes one Kubernetes object into its API type, failing on
// unknown fields, duplicate fields and wrong types. It returns the object.
func decodeStrict(doc []byte) (any, error) {
	var tm typeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, fmt.Errorf("not YAML: %v", err)
	}
	newObj, ok := kinds[tm.APIVersion+"/"+tm.Kind]
	if !ok {
		return nil, fmt.Errorf("unexpected apiVersion/kind %q/%q: add it to kinds if it is meant", tm.APIVersion, tm.Kind)
	}
	obj := newObj()
	if err := unmarshalStrict(doc, obj); err != nil {
		return nil, fmt.Errorf("%s: %v", tm.Kind, err)
	}
	return obj, nil
}

func yamlFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no YAML under %s", dir)
	}
	return files
}

func isKustomization(path string) bool {
	b := filepath.Base(path)
	return b == "kustomization.yaml" || b == "kustomization.yml" || b == "Kustomization"
}

// jsonPatchOp is one operation of a JSON 6902 patch file.
type jsonPatchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	From  string          `json:"from,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
}

// account is one entry of a DISTQ_ACCOUNTS_FILE (docs/DEPLOYMENT.md).
type account struct {
	Name               string `json:"name"`
	UID                string `json:"uid"`
	AccessKeyIDEnv     string `json:"access_key_id_env,omitempty"`
	AccessKeySecretEnv string `json:"access_key_secret_env,omitempty"`
	CredentialsChain   bool   `json:"credentials_chain,omitempty"`
	Endpoint           string `json:"endpoint,omitempty"`
	CreateQPS          int    `json:"create_qps,omitempty"`
	QueryQPS           int    `json:"query_qps,omitempty"`
	ListQPS            int    `json:"list_qps,omitempty"`
	DeleteQPS          int    `json:"delete_qps,omitempty"`
	MaxJobs            int    `json:"max_jobs,omitempty"`
	DeleteFinished     bool   `json:"delete_finished,omitempty"`
	Default            bool   `json:"default,omitempty"`
}

// roles tells, for files that kustomizations name as JSON 6902 patches
// (a patch with a target whose file is a list) or as generator files, what
// they are; every other YAML file is a Kubernetes object.
func roles(t *testing.T) (jsonPatches, generatorFiles map[string]bool) {
	t.Helper()
	jsonPatches, generatorFiles = map[string]bool{}, map[string]bool{}
	for _, path := range yamlFiles(t, k8sDir) {
		if !isKustomization(path) {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var k kusttypes.Kustomization
		if err := yaml.Unmarshal(data, &k); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		dir := filepath.Dir(path)
		for _, p := range k.Patches {
			if p.Path == "" || p.Target == nil {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, p.Path))
			if err == nil && strings.HasPrefix(strings.TrimSpace(stripComments(b)), "-") {
				jsonPatches[filepath.Join(dir, p.Path)] = true
			}
		}
		var gens []kusttypes.GeneratorArgs
		for _, g := range k.SecretGenerator {
			gens = append(gens, g.GeneratorArgs)
		}
		for _, g := range k.ConfigMapGenerator {
			gens = append(gens, g.GeneratorArgs)
		}
		for _, g := range gens {
			for _, f := range g.FileSources {
				if _, file, ok := strings.Cut(f, "="); ok {
					f = file
				}
				generatorFiles[filepath.Join(dir, f)] = true
			}
		}
	}
	return jsonPatches, generatorFiles
}

func stripComments(b []byte) string {
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestManifestsDecodeStrictly decodes every file under deployments/k8s into
// its typed object: kustomizations into kustomize's type, JSON 6902 patches
// into operations, accounts files into distq's account entries, and the rest
// into the Kubernetes API types (strategic-merge patches too: they are
// partial objects of a kind).
func TestManifestsDecodeStrictly(t *testing.T) {
	jsonPatches, generatorFiles := roles(t)
	for _, path := range yamlFiles(t, k8sDir) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case isKustomization(path):
			var k kusttypes.Kustomization
			if err := unmarshalStrict(data, &k); err != nil {
				t.Errorf("%s: %v", path, err)
			}
			continue
		case jsonPatches[path]:
			var ops []jsonPatchOp
			if err := unmarshalStrict(data, &ops); err != nil {
				t.Errorf("%s (JSON patch): %v", path, err)
			}
			for i, op := range ops {
				if !slices.Contains([]string{"add", "remove", "replace", "move", "copy", "test"}, op.Op) || !strings.HasPrefix(op.Path, "/") {
					t.Errorf("%s: operation %d: bad op %q or path %q", path, i+1, op.Op, op.Path)
				}
			}
			continue
		case generatorFiles[path]:
			if strings.Contains(filepath.Base(path), "accounts") {
				var accounts []account
				if err := unmarshalStrict(data, &accounts); err != nil {
					t.Errorf("%s (accounts file): %v", path, err)
				}
				for i, a := range accounts {
					if a.Name == "" || a.UID == "" {
						t.Errorf("%s: account %d needs a name and a uid", path, i+1)
					}
					if a.CredentialsChain == (a.AccessKeyIDEnv != "") || (a.AccessKeyIDEnv == "") != (a.AccessKeySecretEnv == "") {
						t.Errorf("%s: account %q: either both access_key_*_env or credentials_chain: true", path, a.Name)
					}
				}
			}
			continue
		}
		docs := splitDocs(data)
		if len(docs) == 0 {
			t.Errorf("%s: no object", path)
		}
		for i, doc := range docs {
			if _, err := decodeStrict(doc); err != nil {
				t.Errorf("%s (document %d): %v", path, i+1, err)
			}
		}
	}
}

// TestStrictDecodingCatchesMistakes proves the checker would fail the
// mistakes it exists for.
func TestStrictDecodingCatchesMistakes(t *testing.T) {
	bad := map[string]string{
		"unknown field": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: 1\n  replica: 2\n",
		"wrong type":    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: \"three\"\n",
		"wrong case":    "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports:\n    - port: 80\n      targetport: 8080\n",
		"duplicate key": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  A: b\n  A: c\n",
		"nested typo":   "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports:\n    - port: 80\n      targetPorts: 8080\n",
		"unknown kind":  "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n",
		"monitor typo":  "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\nspec:\n  selector: {}\n  endpoints:\n    - port: http\n      interva: 15s\n",
	}
	for name, doc := range bad {
		if _, err := decodeStrict([]byte(doc)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
	good := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: 1\n  selector: {matchLabels: {a: b}}\n  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i}]}}\n"
	if _, err := decodeStrict([]byte(good)); err != nil {
		t.Errorf("a valid Deployment: %v", err)
	}
}

// TestKustomizationResourcesExist checks that every resource, patch and
// component a kustomization names is there.
func TestKustomizationResourcesExist(t *testing.T) {
	for _, path := range yamlFiles(t, k8sDir) {
		if !isKustomization(path) {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var k kusttypes.Kustomization
		if err := yaml.Unmarshal(data, &k); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		dir := filepath.Dir(path)
		refs := append([]string{}, k.Resources...)
		refs = append(refs, k.Components...)
		for _, p := range k.Patches {
			if p.Path != "" {
				refs = append(refs, p.Path)
			}
		}
		if len(refs) == 0 {
			t.Errorf("%s: names no resource", path)
		}
		for _, r := range refs {
			if _, err := os.Stat(filepath.Join(dir, r)); err != nil {
				t.Errorf("%s: resource %q: %v", path, r, err)
			}
		}
	}
}

// build runs kustomize (the library kubectl embeds) on dir and decodes
// every object of the result strictly.
func build(t *testing.T, dir string) []any {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(filesys.MakeFsOnDisk(), abs)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := resMap.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	var objs []any
	for i, doc := range splitDocs(out) {
		obj, err := decodeStrict(doc)
		if err != nil {
			t.Errorf("kustomize build %s, object %d: %v", dir, i+1, err)
			continue
		}
		objs = append(objs, obj)
	}
	return objs
}

func kustomizationDirs(t *testing.T) []string {
	var dirs []string
	for _, path := range yamlFiles(t, k8sDir) {
		if isKustomization(path) {
			dirs = append(dirs, filepath.Dir(path))
		}
	}
	return dirs
}

// TestKustomizeBuilds builds the base and every overlay and checks what
// the running system needs: probes on /healthz and /readyz, a non-root
// read-only container, resource requests, a PDB and a ServiceMonitor per
// workload, and a headless Service for the workers' metrics.
func TestKustomizeBuilds(t *testing.T) {
	for _, dir := range kustomizationDirs(t) {
		t.Run(filepath.ToSlash(dir), func(t *testing.T) {
			objs := build(t, dir)
			deployments := map[string]*appsv1.Deployment{}
			services := map[string]*corev1.Service{}
			pdbs := map[string]bool{}
			monitors := map[string]*monitoringv1.ServiceMonitor{}
			for _, o := range objs {
				switch o := o.(type) {
				case *appsv1.Deployment:
					deployments[o.Name] = o
				case *corev1.Service:
					services[o.Name] = o
				case *policyv1.PodDisruptionBudget:
					pdbs[o.Name] = true
				case *monitoringv1.ServiceMonitor:
					monitors[o.Name] = o
				}
			}
			for _, name := range []string{"distq-api", "distq-worker"} {
				d := deployments[name]
				if d == nil {
					t.Errorf("no Deployment %s", name)
					continue
				}
				checkPodSpec(t, name, &d.Spec.Template.Spec)
				if !pdbs[name] {
					t.Errorf("no PodDisruptionBudget %s", name)
				}
				if services[name] == nil {
					t.Errorf("no Service %s", name)
				}
				if monitors[name] == nil {
					t.Errorf("no ServiceMonitor %s (its name and Service's name make Prometheus' job label)", name)
				}
			}
			if s := services["distq-worker"]; s != nil && s.Spec.ClusterIP != corev1.ClusterIPNone {
				t.Errorf("Service distq-worker: clusterIP %q, want None (headless, one target per worker)", s.Spec.ClusterIP)
			}
		})
	}
}

func checkPodSpec(t *testing.T, name string, spec *corev1.PodSpec) {
	t.Helper()
	if spec.SecurityContext == nil || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot {
		t.Errorf("%s: pod securityContext.runAsNonRoot is not true", name)
	}
	if len(spec.Containers) == 0 {
		t.Fatalf("%s: no container", name)
	}
	for _, c := range spec.Containers {
		where := name + "/" + c.Name
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: readOnlyRootFilesystem is not true", where)
		}
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation is not false", where)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
			t.Errorf("%s: no cpu and memory requests", where)
		}
		for probe, want := range map[string]struct {
			p    *corev1.Probe
			path string
		}{"livenessProbe": {c.LivenessProbe, "/healthz"}, "readinessProbe": {c.ReadinessProbe, "/readyz"}} {
			if want.p == nil || want.p.HTTPGet == nil {
				t.Errorf("%s: no HTTP %s", where, probe)
				continue
			}
			if want.p.HTTPGet.Path != want.path {
				t.Errorf("%s: %s on %q, want %q", where, probe, want.p.HTTPGet.Path, want.path)
			}
			if !hasPort(c, want.p.HTTPGet.Port.String()) {
				t.Errorf("%s: %s port %s is not a port of the container", where, probe, want.p.HTTPGet.Port.String())
			}
		}
	}
}

func hasPort(c corev1.Container, port string) bool {
	for _, p := range c.Ports {
		if p.Name == port || fmt.Sprint(p.ContainerPort) == port {
			return true
		}
	}
	return false
}

// TestPrometheusRuleMatchesAlerts checks that the PrometheusRule of the base
// carries exactly the rule groups of deployments/prometheus/alerts.yml (the
// file promtool checks and tests), so the two cannot drift apart.
func TestPrometheusRuleMatchesAlerts(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(k8sDir, "base", "prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := decodeStrict(data)
	if err != nil {
		t.Fatal(err)
	}
	pr, ok := obj.(*monitoringv1.PrometheusRule)
	if !ok {
		t.Fatalf("prometheusrule.yaml holds a %T", obj)
	}
	alerts, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var want monitoringv1.PrometheusRuleSpec
	if err := unmarshalStrict(alerts, &want); err != nil {
		t.Fatalf("%s as PrometheusRule groups: %v", alertsFile, err)
	}
	if !reflect.DeepEqual(pr.Spec, want) {
		t.Errorf("deployments/k8s/base/prometheusrule.yaml differs from %s: regenerate it (the command is at its top)", alertsFile)
		got, _ := json.MarshalIndent(pr.Spec, "", "  ")
		exp, _ := json.MarshalIndent(want, "", "  ")
		gl, el := strings.Split(string(got), "\n"), strings.Split(string(exp), "\n")
		for i := 0; i < len(gl) || i < len(el); i++ {
			g, e := "", ""
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(el) {
				e = el[i]
			}
			if g != e {
				t.Errorf("first difference, line %d of the JSON form:\n  prometheusrule.yaml: %s\n  alerts.yml:          %s", i+1, g, e)
				break
			}
		}
	}
	if len(want.Groups) == 0 {
		t.Errorf("%s has no group", alertsFile)
	}
}
