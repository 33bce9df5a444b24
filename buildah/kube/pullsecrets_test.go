package kube

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"imagehub/store"
)

// TestPullSecretsSync: a pull secret is mirrored, follows a change of its
// password and goes when it is deleted; a Secret imagehub did not make
// stays.
func TestPullSecretsSync(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(filepath.Join(t.TempDir(), "imagehub.db"), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	client := fake.NewClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "theirs", Namespace: "notebooks"}})
	p := NewPullSecrets(client, "notebooks", st, nil)
	auth := func(name string) map[string]map[string]map[string]string {
		t.Helper()
		s, err := client.CoreV1().Secrets("notebooks").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if s.Type != corev1.SecretTypeDockerConfigJson {
			t.Errorf("type %s", s.Type)
		}
		var cfg map[string]map[string]map[string]string
		if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg); err != nil {
			t.Fatal(err)
		}
		return cfg
	}

	sec := &store.Secret{Name: "team-pull", RegistryHost: "registry.example", Username: "reader", Password: "first"}
	if err := st.CreateSecret(ctx, sec); err != nil {
		t.Fatal(err)
	}
	if err := p.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := auth("team-pull")["auths"]["registry.example"]; got["username"] != "reader" || got["password"] != "first" || got["auth"] != "cmVhZGVyOmZpcnN0" {
		t.Errorf("mirrored %v", got)
	}

	sec.Password = "second"
	if err := st.PutSecret(ctx, sec); err != nil {
		t.Fatal(err)
	}
	if err := p.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := auth("team-pull")["auths"]["registry.example"]["password"]; got != "second" {
		t.Errorf("after a change: %q", got)
	}

	if err := st.DeleteSecret(ctx, "team-pull"); err != nil {
		t.Fatal(err)
	}
	if err := p.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	list, _ := client.CoreV1().Secrets("notebooks").List(ctx, metav1.ListOptions{})
	if len(list.Items) != 1 || list.Items[0].Name != "theirs" {
		t.Errorf("left %v", list.Items)
	}
}
