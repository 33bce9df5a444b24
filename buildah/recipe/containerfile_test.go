package recipe

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// The -update flag rewrites testdata/*.golden:
//
//	go test ./buildah/recipe -run Containerfile -update
//
// It is registered only when no other test file of the package has done so.
var _ = func() bool {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files in testdata/")
	}
	return true
}()

// goldenUpdate reports whether -update was given.
func goldenUpdate() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

func TestContainerfileGolden(t *testing.T) {
	all := Packages{
		Apt:   []string{"curl", "ca-certificates", "vim=2:9.0.1378-2"},
		Conda: []string{"conda-forge::numpy==1.17*", "bioconda::samtools 1.17"},
		Pip:   []string{"numpy>=1.2", `requests[socks]==2.31.0 ; python_version >= "3.8"`},
	}
	tests := []struct {
		name  string
		base  string
		p     Packages
		user  string
		setup Setup
	}{
		{"all", "docker.io/jupyter/base-notebook:latest", all, "jovyan", testSetup("team-a", "docker.io/jupyter/base-notebook")},
		{"pip-only", "docker.io/library/python:3.12", Packages{Pip: []string{"numpy>=1.2", "pandas"}}, "1000:100", testSetup("system", "docker.io/library/python")},
		{"none", "docker.io/library/debian:bookworm", Packages{}, "nobody", testSetup("system", "docker.io/library/debian")},
		{"user-nonroot", "registry.example.com/team/base@sha256:" + strings.Repeat("ab", 32), Packages{Apt: []string{"git"}}, "jovyan", testSetup("team-a", "registry.example.com/team/base")},
		{"user-empty", "docker.io/library/debian:bookworm", Packages{Apt: []string{"git", "curl"}, Conda: []string{"numpy"}}, "", testSetup("system", "docker.io/library/debian")},
		{"mirrors", "docker.io/jupyter/base-notebook:latest", all, "jovyan", mirrorSetup},
		{"mirrors-no-credentials", "docker.io/library/debian:bookworm", all, "", Setup{
			CacheScope: CacheScope("team-b", "docker.io/library/debian"),
			Mirrors: Mirrors{PipIndexURL: "https://pypi.example.com/simple", CondaChannels: []string{"conda-forge"},
				AptMirror: "http://apt.example.com/"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Containerfile(tc.base, tc.p, tc.user, tc.setup)
			path := filepath.Join("testdata", tc.name+".golden")
			if goldenUpdate() {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("Containerfile differs from %s (run with -update if intended)\ngot:\n%s\nwant:\n%s", path, got, want)
			}
			if got2 := Containerfile(tc.base, tc.p, tc.user, tc.setup); got2 != got {
				t.Errorf("Containerfile is not deterministic")
			}
		})
	}
}

// testSetup is the setup of a build without mirrors.
func testSetup(owner, repository string) Setup {
	return Setup{CacheScope: CacheScope(owner, repository)}
}

// mirrorSetup has every mirror and every credential file.
var mirrorSetup = Setup{
	CacheScope: CacheScope("team-a", "docker.io/jupyter/base-notebook"),
	Mirrors: Mirrors{
		PipIndexURL: "https://pypi.example.com/simple/", PipExtraIndexURL: "http://10.1.2.3:8080/extra/simple/", PipNetrc: true,
		CondaChannels: []string{"conda-forge", "https://conda.example.com/bioconda"}, Condarc: true,
		AptMirror: "https://apt.example.com:8443/mirror", AptAuth: true,
	},
}

func TestContainerfileShape(t *testing.T) {
	p := Packages{Apt: []string{"a1", "b2"}, Conda: []string{"conda-forge::numpy==1.17*"}, Pip: []string{"numpy>=1.2"}}
	s := testSetup("system", "docker.io/library/debian")
	got := Containerfile("debian", p, "", s)
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	aptPrefix, aptSuffix := aptRun(s)
	condaPrefix, condaSuffix := condaRun(s)
	pipPrefix, pipSuffix := pipRun(s)
	want := []string{
		"FROM debian",
		"USER 0",
		"RUN " + aptPrefix + " 'a1' 'b2'" + aptSuffix,
		"RUN " + condaPrefix + " 'conda-forge::numpy==1.17*'" + condaSuffix,
		"RUN " + pipPrefix + " 'numpy>=1.2'" + pipSuffix,
		"USER root",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("Containerfile =\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
	for _, l := range lines[2:5] {
		rest := l[strings.LastIndex(l, ",sharing=locked ")+len(",sharing=locked "):]
		if !strings.HasPrefix(l, "RUN --mount=type=cache,id=system/docker.io/library/debian/") || !strings.HasPrefix(rest, "command -v ") {
			t.Errorf("RUN line does not mount its cache and check its package manager first: %q", l)
		}
	}
	for _, want := range []string{
		"apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -o Dir::Cache::Archives=/var/cache/apt/imagehub/ -o APT::Keep-Downloaded-Packages=true 'a1' 'b2'\n",
		"CONDA_PKGS_DIRS=/var/cache/imagehub/conda conda install --quiet --yes 'conda-forge::numpy==1.17*' && conda clean --all -f -y\n",
		"PIP_BREAK_SYSTEM_PACKAGES=1 PIP_CACHE_DIR=/var/cache/imagehub/pip pip install 'numpy>=1.2'\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Containerfile lacks %q:\n%s", want, got)
		}
	}
}

// TestContainerfileCaches checks what keeps the package caches out of the
// layers and apart between scopes.
func TestContainerfileCaches(t *testing.T) {
	p := Packages{Apt: []string{"curl"}, Conda: []string{"numpy"}, Pip: []string{"six"}}
	a := Containerfile("debian", p, "", testSetup("team-a", "docker.io/library/debian"))
	b := Containerfile("debian", p, "", testSetup("team-b", "docker.io/library/debian"))
	if a == b {
		t.Fatal("two owners' builds have the same Containerfile: they would share caches and layers")
	}
	for _, want := range []string{
		"--mount=type=cache,id=team-a/docker.io/library/debian/apt,target=/var/cache/apt,sharing=locked",
		"--mount=type=cache,id=team-a/docker.io/library/debian/apt-lists,target=/var/lib/apt/lists,sharing=locked",
		"--mount=type=cache,id=team-a/docker.io/library/debian/conda,target=/var/cache/imagehub/conda,sharing=locked",
		"--mount=type=cache,id=team-a/docker.io/library/debian/pip,target=/var/cache/imagehub/pip,sharing=locked",
	} {
		if !strings.Contains(a, want) {
			t.Errorf("Containerfile lacks %s:\n%s", want, a)
		}
	}
	// Cleaning would empty the caches (they are mounts, never in a layer).
	for _, gone := range []string{"apt-get clean", "rm -rf /var/lib/apt/lists", "--no-cache-dir"} {
		if strings.Contains(a, gone) {
			t.Errorf("Containerfile still has %q:\n%s", gone, a)
		}
	}
}

func TestCheckSetup(t *testing.T) {
	ok := []Setup{
		testSetup("system", "docker.io/library/debian"),
		testSetup("team-a", "127.0.0.1:5000/imagehub/base"),
		mirrorSetup,
	}
	for _, s := range ok {
		if err := CheckSetup(s); err != nil {
			t.Errorf("CheckSetup(%+v) = %v", s, err)
		}
	}
	bad := []Setup{
		{},
		testSetup("a b", "docker.io/library/debian"),
		testSetup("a", "docker.io/library/debian,target=/"),
		{CacheScope: "a", Mirrors: Mirrors{PipIndexURL: "ftp://x/simple"}},
		{CacheScope: "a", Mirrors: Mirrors{PipIndexURL: "https://x/simple?a=b"}},
		{CacheScope: "a", Mirrors: Mirrors{PipExtraIndexURL: "https://u:p@x/simple"}},
		{CacheScope: "a", Mirrors: Mirrors{AptMirror: "http://x/#g;s#x"}},
		{CacheScope: "a", Mirrors: Mirrors{AptMirror: "http://x/&"}},
		{CacheScope: "a", Mirrors: Mirrors{AptMirror: "http://x/'"}},
		{CacheScope: "a", Mirrors: Mirrors{CondaChannels: []string{"-c"}}},
		{CacheScope: "a", Mirrors: Mirrors{CondaChannels: []string{"a b"}}},
		{CacheScope: "a", Mirrors: Mirrors{CondaChannels: []string{"~x"}}},
	}
	for _, s := range bad {
		if err := CheckSetup(s); err == nil {
			t.Errorf("CheckSetup(%+v) accepted it", s)
		}
	}
}

func TestCheckContainerfileInputs(t *testing.T) {
	tests := []struct {
		base, user string
		ok         bool
	}{
		{"docker.io/library/debian:bookworm", "", true},
		{"debian", "jovyan", true},
		{"debian", "1000", true},
		{"debian", "1000:100", true},
		{"debian", "nb-user:users", true},
		{"localhost:5000/a/b@sha256:" + strings.Repeat("0", 64), "root", true},
		{"", "root", false},
		{"debian\nRUN id", "", false},
		{"debian AS x", "", false},
		{"$BASE", "", false},
		{"debian", "root\nRUN id", false},
		{"debian", "root id", false},
		{"debian", "$USER", false},
		{"debian", "a:b:c", false},
		{"debian", ":100", false},
		{"debian", "1000:", false},
	}
	for _, tc := range tests {
		err := CheckContainerfileInputs(tc.base, tc.user)
		if (err == nil) != tc.ok {
			t.Errorf("CheckContainerfileInputs(%q, %q) = %v, want ok=%v", tc.base, tc.user, err, tc.ok)
		}
	}
}

func TestContainerfilePanicsOnUnsafeInputs(t *testing.T) {
	for _, tc := range []struct {
		base, user string
		p          Packages
		s          Setup
	}{
		{"debian", "root\nRUN id", Packages{}, testSetup("system", "debian")},
		{"debian\nRUN id", "", Packages{}, testSetup("system", "debian")},
		{"debian", "", Packages{Pip: []string{"x' ; id ; '"}}, testSetup("system", "debian")},
		{"debian", "", Packages{Pip: []string{"six"}}, Setup{CacheScope: "system", Mirrors: Mirrors{PipIndexURL: "http://x/;id"}}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Containerfile(%q, %v, %q, %+v) did not panic", tc.base, tc.p, tc.user, tc.s)
				}
			}()
			Containerfile(tc.base, tc.p, tc.user, tc.s)
		}()
	}
}

var hex12 = regexp.MustCompile(`^[0-9a-f]{12}$`)

func TestTag(t *testing.T) {
	parse := func(r Text) Packages {
		t.Helper()
		p, err := Parse(r)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := "docker.io/library/debian:bookworm"
	r := Text{BaseImage: base, Apt: "curl\ngit", Conda: "numpy", Pip: "pandas>=2"}
	tag := Tag(base, parse(r))
	if !hex12.MatchString(tag) {
		t.Fatalf("Tag = %q, want 12 lowercase hex characters", tag)
	}
	if again := Tag(base, parse(r)); again != tag {
		t.Errorf("Tag not deterministic: %q then %q", tag, again)
	}

	same := []Text{
		{BaseImage: base, Apt: "# tools\n  curl  \r\n\ngit\n", Conda: "\nnumpy\n", Pip: "pandas>=2\n# end"},
		{BaseImage: base, Apt: "\tcurl\ngit\t", Conda: "# c\nnumpy", Pip: "  pandas>=2  "},
	}
	for _, s := range same {
		if got := Tag(base, parse(s)); got != tag {
			t.Errorf("Tag(%+v) = %q, want %q (same packages)", s, got, tag)
		}
	}
	// The -c form is normalised, so it names the same package as CHANNEL::spec.
	a := Tag(base, parse(Text{BaseImage: base, Conda: "-c conda-forge numpy"}))
	b := Tag(base, parse(Text{BaseImage: base, Conda: "conda-forge::numpy"}))
	if a != b {
		t.Errorf("-c conda-forge numpy and conda-forge::numpy have different tags %q and %q", a, b)
	}

	different := []struct {
		base string
		r    Text
	}{
		{"docker.io/library/debian:trixie", r},
		{base, Text{BaseImage: base, Apt: "curl\ngit\nvim", Conda: "numpy", Pip: "pandas>=2"}},
		{base, Text{BaseImage: base, Apt: "git\ncurl", Conda: "numpy", Pip: "pandas>=2"}},
		{base, Text{BaseImage: base, Apt: "curl", Conda: "numpy", Pip: "pandas>=2"}},
		{base, Text{BaseImage: base, Apt: "curl\ngit", Conda: "numpy=1.26", Pip: "pandas>=2"}},
		{base, Text{BaseImage: base, Apt: "curl\ngit", Pip: "pandas>=2"}},
		{base, Text{BaseImage: base, Apt: "curl\ngit", Conda: "numpy", Pip: "pandas>=2.1"}},
		{base, Text{BaseImage: base, Apt: "curl\ngit", Conda: "numpy\npandas>=2"}},
		{base, Text{BaseImage: base, Apt: "curl\ngit", Pip: "numpy\npandas>=2"}},
	}
	seen := map[string]int{tag: -1}
	for i, d := range different {
		got := Tag(d.base, parse(d.r))
		if j, dup := seen[got]; dup {
			t.Errorf("Tag of case %d = %q, same as case %d", i, got, j)
		}
		seen[got] = i
	}
	// Moving a package between lists or splitting one is never ambiguous.
	x := Tag(base, Packages{Apt: []string{"ab"}})
	y := Tag(base, Packages{Apt: []string{"a", "b"}})
	z := Tag(base, Packages{Pip: []string{"ab"}})
	if x == y || x == z || y == z {
		t.Errorf("ambiguous canonical form: %q %q %q", x, y, z)
	}
	if Tag(base, Packages{}) != Tag(base, Packages{Apt: []string{}, Conda: []string{}, Pip: []string{}}) {
		t.Errorf("nil and empty lists hash differently")
	}
}

// quoted splits a RUN line into its fixed text (each single-quoted segment
// replaced by a pair of quotes) and the quoted arguments. ok is false on an
// unpaired quote.
func quoted(line string) (fixed string, args []string, ok bool) {
	var b strings.Builder
	for {
		i := strings.IndexByte(line, '\'')
		if i < 0 {
			b.WriteString(line)
			return b.String(), args, true
		}
		j := strings.IndexByte(line[i+1:], '\'')
		if j < 0 {
			return "", nil, false
		}
		b.WriteString(line[:i])
		b.WriteString("''")
		args = append(args, line[i+1:i+1+j])
		line = line[i+1+j+1:]
	}
}

// fixedRun is the fixed text of a RUN line with n packages.
func fixedRun(prefix string, n int, suffix string) string {
	return "RUN " + prefix + strings.Repeat(" ''", n) + suffix
}

// countPackages counts the non-blank, non-comment lines of a textarea.
func countPackages(text string) int {
	n := 0
	for _, l := range strings.Split(text, "\n") {
		l = strings.Trim(l, " \t\r")
		if l != "" && l[0] != '#' {
			n++
		}
	}
	return n
}

// metachars must never appear outside the quoted packages, except in the
// fixed text that Containerfile writes itself.
const metachars = ";|&$`()<>\\\"'\n"

func FuzzContainerfileQuoting(f *testing.F) {
	seeds := [][3]string{
		{"curl\ngit", "numpy", "numpy>=1.2"},
		{"curl; rm -rf /", "numpy; id", "numpy; rm -rf /"},
		{"$(id)", "$(id)", "numpy; python_version == \"$(id)\""},
		{"`id`", "numpy`id`", "numpy==1.0`id`"},
		{"curl && id", "numpy && id", "numpy>=1 && id"},
		{"curl | sh", "numpy=1.0|1.1", "numpy|sh"},
		{"'curl'", "'numpy'", "numpy'; id; '"},
		{"curl\nid", "-c conda-forge::numpy==1.17*", "numpy>=1.2\n-e ."},
		{"n\u0430mpy", "conda-forge/linux-64::numpy 1.17 py38_0", "requests[socks]>=2 ; os_name == \"posix\" and (extra == \"x\" or python_version < \"3.8\")"},
		{"curl=1:2.3-4+b1\nfoo/bookworm", "numpy[version=>=1.2,build=py38_0]", "foo; \"a;b|c&d$e`f\" in platform_version"},
		{"-o Dpkg::Options=--force-confnew", "-c conda-forge numpy 1.17 py38_0", "--index-url https://x"},
		{"curl\r\n# c\r\n\r\nwget\r\n", "numpy>1\n-c bioconda samtools", "x===1.0\\"},
		{"a\x00b", "\"numpy\"", "foo; python_version < \"3.8\" # c"},
		{"libstdc++6\ng++\npython3.11=3.11.2-6", "numpy>=1.2,<2|>3 *_cuda\nconda-forge:ns:numpy=1.17=py38_0", "Django[argon2,bcrypt] ~= 4.2 ; (implementation_name == \"cpython\") and extra != \"x\""},
		{"", "-c conda-forge  numpy", "torch===2.1.0+cu118\nzope.interface!=1.*"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, apt, conda, pip string) {
		r := Text{BaseImage: "docker.io/library/debian:bookworm", Apt: apt, Conda: conda, Pip: pip}
		p, err := Parse(r)
		if err != nil {
			re, ok := err.(*RecipeError)
			if !ok || len(re.Lines) == 0 {
				t.Fatalf("Parse error %v (%T) is not a non-empty *RecipeError", err, err)
			}
			for _, l := range re.Lines {
				if l.Reason == "" || l.Line < 1 {
					t.Fatalf("bad LineError %+v", l)
				}
			}
			return
		}
		// No line is dropped.
		for _, c := range []struct {
			text string
			got  []string
		}{{apt, p.Apt}, {conda, p.Conda}, {pip, p.Pip}} {
			if n := countPackages(c.text); n != len(c.got) {
				t.Fatalf("%d package lines in %q, %d packages returned: %q", n, c.text, len(c.got), c.got)
			}
		}
		for _, list := range [][]string{p.Apt, p.Conda, p.Pip} {
			for _, pkg := range list {
				if pkg == "" || pkg[0] == '-' || len(pkg) > maxLineLength+1 || !utf8.ValidString(pkg) {
					t.Fatalf("accepted package %q could be read as an option or is malformed", pkg)
				}
				for i := 0; i < len(pkg); i++ {
					if c := pkg[i]; c < 0x20 || c >= 0x7f || c == '\'' || c == '\\' {
						t.Fatalf("accepted package %q holds byte 0x%02x", pkg, c)
					}
				}
			}
		}

		cf := Containerfile(r.BaseImage, p, "jovyan", mirrorSetup)
		lines := strings.Split(cf, "\n")
		if lines[len(lines)-1] != "" {
			t.Fatalf("Containerfile does not end with a newline:\n%s", cf)
		}
		lines = lines[:len(lines)-1]
		type run struct {
			prefix, suffix string
			pkgs           []string
		}
		var runs []run
		for _, x := range []struct {
			run  func(Setup) (string, string)
			pkgs []string
		}{{aptRun, p.Apt}, {condaRun, p.Conda}, {pipRun, p.Pip}} {
			if len(x.pkgs) > 0 {
				prefix, suffix := x.run(mirrorSetup)
				runs = append(runs, run{prefix, suffix, x.pkgs})
			}
		}
		if len(lines) != 3+len(runs) || lines[0] != "FROM "+r.BaseImage || lines[1] != "USER 0" || lines[len(lines)-1] != "USER jovyan" {
			t.Fatalf("unexpected Containerfile shape:\n%s", cf)
		}
		for i, x := range runs {
			line := lines[2+i]
			fixed, args, ok := quoted(line)
			if !ok {
				t.Fatalf("unpaired quote in %q", line)
			}
			// The template quotes words of its own (sed's expression) ahead
			// of the packages.
			want, own, _ := quoted(fixedRun(x.prefix, len(x.pkgs), x.suffix))
			if fixed != want {
				t.Fatalf("RUN line outside its quoted packages differs from the template:\n got %q\nwant %q", fixed, want)
			}
			own = own[:len(own)-len(x.pkgs)]
			if len(args) != len(own)+len(x.pkgs) || strings.Join(args, "\x00") != strings.Join(append(own, x.pkgs...), "\x00") {
				t.Fatalf("quoted arguments %q, want the template's %q and the packages %q", args, own, x.pkgs)
			}
			// Belt and braces (implied by the comparison above): outside the
			// quoted words, the metacharacters are exactly the template's.
			if got, want := metaOnly(strings.ReplaceAll(fixed, "''", "")), metaOnly(strings.ReplaceAll(want, "''", "")); got != want {
				t.Fatalf("metacharacters outside quotes are %q, want the template's %q, in %q", got, want, line)
			}
		}
	})
}

// metaOnly keeps the shell metacharacters of s, in order.
func metaOnly(s string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(metachars, r) {
			return r
		}
		return -1
	}, s)
}

// FuzzValidateLines checks each validator alone: an accepted line is short
// printable ASCII without quotes, backslashes or a leading "-", and is the
// same verdict Parse gives.
func FuzzValidateLines(f *testing.F) {
	for _, s := range append([]string{"numpy", "curl=1.0", "-c conda-forge numpy", "x; os_name == \"nt\"", " ", "-c  ", "#"}, shellNasties...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		for _, v := range []struct {
			name  string
			check func(string) string
			field func(string) Text
		}{
			{"apt", ValidateAptLine, func(s string) Text { return Text{BaseImage: "b", Apt: s} }},
			{"conda", ValidateCondaLine, func(s string) Text { return Text{BaseImage: "b", Conda: s} }},
			{"pip", ValidatePipLine, func(s string) Text { return Text{BaseImage: "b", Pip: s} }},
		} {
			reason := v.check(line)
			if reason != "" {
				continue
			}
			if line == "" || len(line) > maxLineLength || line[0] == '-' && v.name != "conda" {
				t.Fatalf("%s accepted %q", v.name, line)
			}
			for i := 0; i < len(line); i++ {
				if c := line[i]; c < 0x20 || c >= 0x7f || c == '\'' || c == '\\' {
					t.Fatalf("%s accepted %q with byte 0x%02x", v.name, line, c)
				}
			}
			if trimLine(line) == line && line[0] != '#' {
				if _, err := Parse(v.field(line)); err != nil {
					t.Fatalf("%s accepted %q alone but Parse refused it: %v", v.name, line, err)
				}
			}
		}
	})
}
