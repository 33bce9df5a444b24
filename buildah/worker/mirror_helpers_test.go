package worker

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"imagehub/buildah/workerspec"
)

// testWheelSource builds a minimal pure-Python wheel: a package whose
// __init__.py is source, with METADATA, WHEEL and a RECORD of sha256
// hashes. It returns the file name and the bytes.
func testWheelSource(t *testing.T, project, version, source string) (string, []byte) {
	t.Helper()
	module := strings.ReplaceAll(project, "-", "_")
	distInfo := module + "-" + version + ".dist-info"
	files := []struct{ name, content string }{
		{module + "/__init__.py", source},
		{distInfo + "/METADATA", "Metadata-Version: 2.1\nName: " + project + "\nVersion: " + version + "\n"},
		{distInfo + "/WHEEL", "Wheel-Version: 1.0\nGenerator: imagehub-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
	}
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	var record strings.Builder
	for _, f := range files {
		w, err := z.Create(f.name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(f.content))
		sum := sha256.Sum256([]byte(f.content))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", f.name, base64.RawURLEncoding.EncodeToString(sum[:]), len(f.content))
	}
	record.WriteString(distInfo + "/RECORD,,\n")
	w, err := z.Create(distInfo + "/RECORD")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(record.String()))
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return module + "-" + version + "-py3-none-any.whl", buf.Bytes()
}

// mirrorServer plays a company's package mirror behind basic auth: a PEP 503
// simple index of wheels under /simple/ and /files/, and an APT mirror that
// passes /debian and /debian-security on to the Debian mirror the builds
// use anyway. It counts what it is asked.
type mirrorServer struct {
	auth   workerspec.HostAuth
	wheels map[string]struct {
		file string
		data []byte
	} // project → its one wheel
	apt *httputil.ReverseProxy

	mu           sync.Mutex
	unauthorized int
	debs         []string // .deb files fetched
	wheelGets    int
	indexGets    int
}

func newMirrorServer(username, password string) *mirrorServer {
	upstream, _ := url.Parse(debianMirror)
	upstream.Path = ""
	m := &mirrorServer{auth: workerspec.HostAuth{Username: username, Password: password}, wheels: map[string]struct {
		file string
		data []byte
	}{}}
	m.apt = &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(upstream) // and the Host header the Debian mirror's
		r.Out.Header.Del("Authorization")
	}}
	return m
}

// addWheel serves a wheel of project.
func (m *mirrorServer) addWheel(t *testing.T, project, version, value string) {
	m.addWheelSource(t, project, version, "VALUE = "+fmt.Sprintf("%q", value)+"\n")
}

// addWheelSource serves a wheel of project whose __init__.py is source.
func (m *mirrorServer) addWheelSource(t *testing.T, project, version, source string) {
	file, data := testWheelSource(t, project, version, source)
	m.wheels[project] = struct {
		file string
		data []byte
	}{file, data}
}

func (m *mirrorServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || subtle.ConstantTimeCompare([]byte(user+":"+pass), []byte(m.auth.Username+":"+m.auth.Password)) != 1 {
		m.mu.Lock()
		m.unauthorized++
		m.mu.Unlock()
		w.Header().Set("WWW-Authenticate", `Basic realm="mirror"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	path := r.URL.Path
	switch {
	case strings.HasPrefix(path, "/debian/") || strings.HasPrefix(path, "/debian-security/"):
		if strings.HasSuffix(path, ".deb") {
			m.mu.Lock()
			m.debs = append(m.debs, path)
			m.mu.Unlock()
		}
		m.apt.ServeHTTP(w, r)
	case path == "/simple/":
		m.count(&m.indexGets)
		for project := range m.wheels {
			fmt.Fprintf(w, "<a href=\"%s/\">%s</a>\n", project, project)
		}
	case strings.HasPrefix(path, "/simple/"):
		m.count(&m.indexGets)
		wh, ok := m.wheels[strings.Trim(strings.TrimPrefix(path, "/simple/"), "/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		sum := sha256.Sum256(wh.data)
		fmt.Fprintf(w, "<!DOCTYPE html><html><body>\n<a href=\"../../files/%s#sha256=%s\">%s</a>\n</body></html>\n",
			wh.file, hex.EncodeToString(sum[:]), wh.file)
	case strings.HasPrefix(path, "/files/"):
		for _, wh := range m.wheels {
			if path == "/files/"+wh.file {
				m.count(&m.wheelGets)
				// As an index serves its files: they never change.
				w.Header().Set("Cache-Control", "max-age=31536000, immutable")
				w.Write(wh.data)
				return
			}
		}
		http.NotFound(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (m *mirrorServer) count(n *int) {
	m.mu.Lock()
	*n++
	m.mu.Unlock()
}

// counts returns what was fetched so far.
func (m *mirrorServer) counts() (debs []string, indexGets, wheelGets, unauthorized int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.debs...), m.indexGets, m.wheelGets, m.unauthorized
}
