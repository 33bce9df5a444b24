package kubetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// Apply creates the objects of a YAML file (documents separated by ---),
// or with dryRun has the API server check them as it would create them
// (admission and validation included) and keep nothing.
func (c *Cluster) Apply(t testing.TB, path string, dryRun bool) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(c.Client.Discovery()))
	opts := metav1.CreateOptions{FieldValidation: "Strict"}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var obj unstructured.Unstructured
		if err := dec.Decode(&obj.Object); errors.Is(err, io.EOF) {
			return
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if obj.Object == nil {
			continue
		}
		gvk := obj.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s: %s: %v", path, gvk, err)
		}
		res := dyn.Resource(m.Resource)
		var ri dynamic.ResourceInterface = res
		if ns := obj.GetNamespace(); ns != "" {
			ri = res.Namespace(ns)
		}
		if _, err := ri.Create(context.Background(), &obj, opts); err != nil {
			t.Errorf("%s: %s %s/%s: %v", path, gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
		}
	}
}
