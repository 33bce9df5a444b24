package recipe

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// shellNasties are lines that try to reach the shell; every manager must
// refuse all of them.
var shellNasties = []string{
	"curl; rm -rf /",
	"curl;id",
	"$(id)",
	"curl$(id)",
	"curl `id`",
	"`id`",
	"curl && id",
	"curl&&id",
	"curl | sh",
	"curl|sh",
	"curl > /etc/passwd",
	"curl>/tmp/x",
	"'curl'",
	"curl'; id; '",
	`"curl"`,
	"curl\nid",
	"curl\rid",
	"curl\\ id",
	"curl\x00",
	"curl\tid",
	"curl &",
	"curl # install curl",
	"n\u0430mpy", // Cyrillic а
	"numpy\u00a0",
	"nump\u0443", // Cyrillic у
	"\uff4eumpy", // fullwidth n
	strings.Repeat("a", 201),
}

func TestValidateAptLine(t *testing.T) {
	good := []string{
		"curl",
		"ca-certificates",
		"libstdc++6",
		"g++",
		"python3.11",
		"r-base-core",
		"curl=7.88.1-10+deb12u5",
		"vim=2:9.0.1378-2",
		"gcc-12=12.2.0-14~bpo11+1",
		"curl/bookworm-backports",
		"xz-utils/stable",
		"0ad",
		strings.Repeat("a", 200),
	}
	for _, line := range good {
		if got := ValidateAptLine(line); got != "" {
			t.Errorf("ValidateAptLine(%q) = %q, want accepted", line, got)
		}
	}
	bad := []struct{ line, want string }{
		{"", "empty"},
		{"a", "at least 2 characters"},
		{"Curl", "lowercase"},
		{"curl wget", "one package a line"},
		{"-y", "options"},
		{"--allow-unauthenticated", "options"},
		{"-o=APT::Get::AllowUnauthenticated=true", "options"},
		{"curl-", "remove"},
		{"curl=", "missing version"},
		{"curl=v1", "starts with a digit"},
		{"curl=1.0*", `"*" at column 9`},
		{"curl/", "missing release"},
		{"curl/Bookworm", "starts with a lowercase"},
		{"curl/bookworm/x", `"/" at column 14`},
		{"=1.0", "missing package name"},
		{"./foo.deb", "package file"},
		{"foo/bar.deb", "package file"},
		{"libc6:i386", `":" at column 6`},
		{"curl*", `"*"`},
		{"_curl", "starts with a lowercase letter"},
		{"curl # comment", "whole-line comments"},
		{"curl#x", "whole-line comments"},
		{"n\u0430mpy", "non-ASCII character U+0430 'а' at column 2"},
		{"curl'x", "single quote at column 5"},
		{"curl\\x", "backslash at column 5"},
		{"curl\nx", "line break at column 5"},
		{"curl\x1bx", "control character U+001B at column 5"},
		{strings.Repeat("a", 201), "too long: 201 characters, at most 200"},
	}
	for _, tc := range bad {
		got := ValidateAptLine(tc.line)
		if got == "" || !strings.Contains(got, tc.want) {
			t.Errorf("ValidateAptLine(%q) = %q, want a reason containing %q", tc.line, got, tc.want)
		}
	}
	for _, line := range shellNasties {
		if got := ValidateAptLine(line); got == "" {
			t.Errorf("ValidateAptLine(%q) accepted a shell metacharacter line", line)
		}
	}
}

func TestValidateCondaLine(t *testing.T) {
	good := []struct{ line, want string }{
		{"numpy", "numpy"},
		{"numpy=1.17", "numpy=1.17"},
		{"numpy==1.17*", "numpy==1.17*"},
		{"numpy>=1.2,<2", "numpy>=1.2,<2"},
		{"numpy 1.11|1.12", "numpy 1.11|1.12"},
		{"numpy=1.11|1.12", "numpy=1.11|1.12"},
		{"numpy>1", "numpy>1"},
		{"numpy!=1.0", "numpy!=1.0"},
		{"numpy~=1.17", "numpy~=1.17"},
		{"numpy=1.17=py38_0", "numpy=1.17=py38_0"},
		{"numpy 1.17 py38_0", "numpy 1.17 py38_0"},
		{"numpy  1.17   py38_0", "numpy 1.17 py38_0"},
		{"numpy >=1.2", "numpy >=1.2"},
		{"numpy 1.17.* *_cuda", "numpy 1.17.* *_cuda"},
		{"python=3.11", "python=3.11"},
		{"_libgcc_mutex", "_libgcc_mutex"},
		{"r-base=4.3", "r-base=4.3"},
		{"conda-forge::numpy==1.17*", "conda-forge::numpy==1.17*"},
		{"conda-forge/linux-64::numpy 1.17 py38_0", "conda-forge/linux-64::numpy 1.17 py38_0"},
		{"nvidia/label/cuda-11.8.0::cuda-toolkit", "nvidia/label/cuda-11.8.0::cuda-toolkit"},
		{"conda-forge:ns:numpy", "conda-forge:ns:numpy"},
		{"pytorch::pytorch", "pytorch::pytorch"},
		{"numpy[version=>=1.2]", "numpy[version=>=1.2]"},
		{"numpy[build=py38_0,channel=conda-forge]", "numpy[build=py38_0,channel=conda-forge]"},
		{"conda-forge::numpy[subdir=linux-64]", "conda-forge::numpy[subdir=linux-64]"},
		{"-c conda-forge::numpy==1.17*", "conda-forge::numpy==1.17*"},
		{"-c conda-forge numpy", "conda-forge::numpy"},
		{"-c conda-forge numpy==1.17*", "conda-forge::numpy==1.17*"},
		{"-c  conda-forge numpy 1.17 py38_0", "conda-forge::numpy 1.17 py38_0"},
		{"--channel bioconda samtools", "bioconda::samtools"},
		{"-c conda-forge::numpy 1.17", "conda-forge::numpy 1.17"},
	}
	for _, tc := range good {
		got, reason := parseCondaLine(tc.line)
		if got != tc.want || reason != "" {
			t.Errorf("parseCondaLine(%q) = %q, %q, want %q, accepted", tc.line, got, reason, tc.want)
		}
		if r := ValidateCondaLine(tc.line); r != "" {
			t.Errorf("ValidateCondaLine(%q) = %q, want accepted", tc.line, r)
		}
	}
	bad := []struct{ line, want string }{
		{"", "empty"},
		{" ", "empty"},
		{"-c", "missing channel"},
		{"-c conda-forge", "missing package"},
		{"-c conda-forge bioconda::numpy", "two channels"},
		{"-c https://example.com/chan numpy", "channel URLs"},
		{"https://example.com/chan::numpy", "channel URLs"},
		{"-cconda-forge numpy", "options are not accepted"},
		{"--override-channels", "options are not accepted"},
		{"--file=env.yml", "options are not accepted"},
		{"::numpy", "missing channel"},
		{"conda-forge:numpy", "CHANNEL::name"},
		{"a::b::numpy", "CHANNEL::name"},
		{"numpy scipy", "must start with a digit"},
		{"numpy scipy pandas", "must start with a digit"},
		{"numpy 1.0 py38 x", "too many"},
		{"numpy=", "missing version"},
		{"numpy>=1.2,", "missing version"},
		{"numpy=1.0|sh", "must start with a digit"},
		{"numpy=1.17=", "missing build"},
		{"numpy=1.17=py38 x", "two builds"},
		{"numpy 1.17 -x", "build"},
		{`numpy[version=">=1.2"]`, "quotes are not accepted"},
		{"numpy[version=>=1.2", "must end the spec"},
		{"numpy[]", "empty []"},
		{"numpy[version]", "not key=value"},
		{"numpy[Version=1]", "not a match spec key"},
		{"numpy[version=]", "missing value"},
		{"numpy[url=http:x]", `":" is not allowed in the value`},
		{"numpy-1.0-py38_0.tar.bz2", "looks like a file"},
		{"numpy-1.0-py38_0.conda", "looks like a file"},
		{"./numpy", "must start with a letter"},
		{".numpy", "must start with a letter"},
		{"numpy*", `"*" is not allowed in a conda package name`},
		{"numpy(>=1.2)", `"(" is not allowed`},
		{"numpy # comment", "whole-line comments"},
		{"numpy=1.0-1", `"-" is not allowed in a conda version`},
		{"n\u0430mpy", "non-ASCII"},
	}
	for _, tc := range bad {
		got := ValidateCondaLine(tc.line)
		if got == "" || !strings.Contains(got, tc.want) {
			t.Errorf("ValidateCondaLine(%q) = %q, want a reason containing %q", tc.line, got, tc.want)
		}
	}
	for _, line := range shellNasties {
		if got := ValidateCondaLine(line); got == "" {
			t.Errorf("ValidateCondaLine(%q) accepted a shell metacharacter line", line)
		}
	}
}

func TestValidatePipLine(t *testing.T) {
	good := []string{
		"numpy",
		"numpy>=1.2",
		"numpy >= 1.2",
		"numpy>=1.2,<2",
		"numpy>=1.2, <2.0",
		"numpy==1.17.*",
		"numpy!=1.17.*",
		"numpy~=1.17",
		"numpy===1.17-custom",
		"numpy==1.2.3rc1",
		"numpy==2.0.0.post1",
		"numpy==1.0.dev3",
		"numpy==1!2.0",
		"torch==2.1.0+cu118",
		"Django<5",
		"zope.interface",
		"typing_extensions",
		"backports.zoneinfo; python_version < \"3.9\"",
		"requests[security]>=2.8.1",
		"requests[security,socks] >=2.8.1, ==2.8.*",
		"requests [security] >= 2.8.1, == 2.8.* ; python_version < \"2.7\"",
		"requests[]",
		"pywin32;sys_platform==\"win32\"",
		"foo; (os_name == \"posix\" or sys_platform == \"darwin\") and python_version >= \"3.8\"",
		"foo; \"linux\" in sys_platform",
		"foo; platform_machine not in \"arm64 aarch64\"",
		"foo; extra == \"test\"",
		"foo; python_version == \"$(id)\"", // quoted for the shell: harmless
		"a",
		"A1",
	}
	for _, line := range good {
		if got := ValidatePipLine(line); got != "" {
			t.Errorf("ValidatePipLine(%q) = %q, want accepted", line, got)
		}
	}
	bad := []struct{ line, want string }{
		{"", "empty"},
		{"numpy>>1", `unknown version operator ">>"`},
		{"numpy=1.2", `unknown version operator "="`},
		{"numpy=>1.2", `unknown version operator "=>"`},
		{"numpy>=", "a version after >="},
		{"numpy>=1.2,", "expected a version specifier"},
		{"numpy>=1.*", `"*" is only allowed`},
		{"numpy==1.*.2", `"*" is only allowed`},
		{"numpy==banana", "not a valid version"},
		{"numpy (>=1.2)", "without parentheses"},
		{"numpy scipy", "one package a line"},
		{"numpy>=1.2 scipy", "one package a line"},
		{"numpy-", "must end with a letter or a digit"},
		{"_numpy", "a package name"},
		{"numpy[", "an extra name"},
		{"numpy[a,", "an extra name"},
		{"numpy[a b]", `"," or "]"`},
		{"numpy;", "missing environment marker"},
		{"numpy; python_version < 3.8", "marker"},
		{"numpy; python_version", "a comparison"},
		{"numpy; foo == \"1\"", `unknown marker variable "foo"`},
		{"numpy; python_version < \"3.8", "unterminated string"},
		{"numpy; python_version < \"3.8\" xor os_name == \"nt\"", `"and", "or"`},
		{"numpy; (python_version < \"3.8\"", `")"`},
		{"numpy; python_version <> \"3\"", "unknown operator"},
		{"numpy; rm -rf /", "unknown marker variable"},
		{"numpy; python_version < \"3.8\" && id", "marker"},
		{"numpy @ https://example.com/numpy.whl", "URLs and pip options are not accepted"},
		{"numpy@https://example.com/x.whl", "URLs and pip options are not accepted"},
		{"https://example.com/numpy.whl", "URLs and pip options are not accepted"},
		{"git+https://github.com/numpy/numpy", "URLs and pip options are not accepted"},
		{"file:///tmp/x", "URLs and pip options are not accepted"},
		{"-e .", "URLs and pip options are not accepted"},
		{"-r requirements.txt", "URLs and pip options are not accepted"},
		{"--index-url https://evil.example/simple", "URLs and pip options are not accepted"},
		{"--extra-index-url=https://evil.example/simple", "URLs and pip options are not accepted"},
		{"-i https://evil.example/simple numpy", "URLs and pip options are not accepted"},
		{"--pre", "URLs and pip options are not accepted"},
		{"./numpy", "paths are not accepted"},
		{"/tmp/numpy", "paths are not accepted"},
		{"numpy-1.0-py3-none-any.whl", "looks like a file name"},
		{"numpy-1.0.tar.gz", "looks like a file name"},
		{"numpy --hash=sha256:abc", "pip options are not accepted"},
		{"numpy>=1.2 # newest", "whole-line comments"},
		{"numpy; os_name == 'nt'", "single quote"},
		{"n\u0430mpy", "non-ASCII character U+0430"},
	}
	for _, tc := range bad {
		got := ValidatePipLine(tc.line)
		if got == "" || !strings.Contains(got, tc.want) {
			t.Errorf("ValidatePipLine(%q) = %q, want a reason containing %q", tc.line, got, tc.want)
		}
	}
	for _, line := range shellNasties {
		if got := ValidatePipLine(line); got == "" {
			t.Errorf("ValidatePipLine(%q) accepted a shell metacharacter line", line)
		}
	}
}

func TestParseKeepsOrderAndSkipsComments(t *testing.T) {
	r := Text{
		BaseImage: "docker.io/library/debian:bookworm",
		Apt:       "\n# tools\ncurl\r\n  git  \n\n\t# editors\nvim=2:9.0.1378-2\n",
		Conda:     "-c conda-forge::numpy==1.17*\nconda-forge::scipy\n-c bioconda samtools 1.17\n",
		Pip:       "numpy>=1.2\n   \n#pinned\nrequests[socks]==2.31.0 ; python_version >= \"3.8\"",
	}
	got, err := Parse(r)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := Packages{
		Apt:   []string{"curl", "git", "vim=2:9.0.1378-2"},
		Conda: []string{"conda-forge::numpy==1.17*", "conda-forge::scipy", "bioconda::samtools 1.17"},
		Pip:   []string{"numpy>=1.2", "requests[socks]==2.31.0 ; python_version >= \"3.8\""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse = %#v, want %#v", got, want)
	}
}

func TestParseEmpty(t *testing.T) {
	got, err := Parse(Text{BaseImage: "debian", Apt: "\n\n# nothing\n", Pip: "  "})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if want := (Packages{}); !reflect.DeepEqual(got, want) {
		t.Errorf("Parse = %#v, want %#v", got, want)
	}
}

func TestParseReportsEveryBadLine(t *testing.T) {
	r := Text{
		BaseImage: " ",
		Apt:       "curl\n\n# comment\nbad pkg\ngit\nCurl\n",
		Conda:     "numpy\n-c\n",
		Pip:       "# pins\nnumpy>=1.2\nnumpy>>1\n\nscipy\nx; rm -rf /\n",
	}
	_, err := Parse(r)
	var re *RecipeError
	if !errors.As(err, &re) {
		t.Fatalf("Parse error = %v (%T), want *RecipeError", err, err)
	}
	type lf struct {
		Field string
		Line  int
		Text  string
	}
	var got []lf
	for _, l := range re.Lines {
		if l.Reason == "" {
			t.Errorf("line %+v has no reason", l)
		}
		got = append(got, lf{l.Field, l.Line, l.Text})
	}
	want := []lf{
		{"baseImage", 0, ""},
		{"apt", 4, "bad pkg"},
		{"apt", 6, "Curl"},
		{"conda", 2, "-c"},
		{"pip", 3, "numpy>>1"},
		{"pip", 6, "x; rm -rf /"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("refused lines = %+v, want %+v", got, want)
	}
	if re.Lines[0].Reason != "required" {
		t.Errorf("baseImage reason = %q, want %q", re.Lines[0].Reason, "required")
	}

	fields := re.Fields()
	if len(fields) != 4 {
		t.Errorf("Fields() has %d fields, want 4: %v", len(fields), fields)
	}
	if got, want := fields["baseImage"], "required"; got != want {
		t.Errorf("Fields()[baseImage] = %q, want %q", got, want)
	}
	if got := fields["pip"]; !strings.HasPrefix(got, `line 3: "numpy>>1": unknown version operator ">>"`) || !strings.Contains(got, `; line 6: "x; rm -rf /": `) {
		t.Errorf("Fields()[pip] = %q", got)
	}
	if got := fields["apt"]; !strings.HasPrefix(got, `line 4: "bad pkg": `) || !strings.Contains(got, `; line 6: "Curl": `) {
		t.Errorf("Fields()[apt] = %q", got)
	}

	msg := err.Error()
	for _, want := range []string{"6 bad lines", "baseImage: required", `pip line 3 "numpy>>1": unknown version operator`, `apt line 4 "bad pkg": `} {
		if !strings.Contains(msg, want) {
			t.Errorf("Error() = %q, want it to contain %q", msg, want)
		}
	}
}

func TestLineErrorError(t *testing.T) {
	tests := []struct {
		e    LineError
		want string
	}{
		{LineError{"pip", 3, "numpy>>1", "bad"}, `pip line 3 "numpy>>1": bad`},
		{LineError{"baseImage", 0, "", "required"}, `baseImage: required`},
		{LineError{"baseImage", 0, "x y", "bad"}, `baseImage "x y": bad`},
		{LineError{"apt", 1, strings.Repeat("a", 300), "too long"}, `apt line 1 "` + strings.Repeat("a", 80) + `...": too long`},
	}
	for _, tc := range tests {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%+v.Error() = %q, want %q", tc.e, got, tc.want)
		}
	}
}

func TestParseNeverDropsALine(t *testing.T) {
	// Every non-blank, non-comment line is either returned or refused.
	text := "curl\n# c\n\nwget\nbad line\n  \nzsh\n"
	p, err := Parse(Text{BaseImage: "debian", Apt: text})
	var re *RecipeError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want *RecipeError", err)
	}
	if len(p.Apt) != 0 {
		t.Errorf("packages returned with an error: %v", p.Apt)
	}
	if got, want := len(re.Lines), 1; got != want {
		t.Errorf("refused %d lines, want %d", got, want)
	}
	p, err = Parse(Text{BaseImage: "debian", Apt: strings.Replace(text, "bad line", "bad-line", 1)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.Apt, []string{"curl", "wget", "bad-line", "zsh"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Apt = %v, want %v", got, want)
	}
}
