package inventory

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"imagehub/store"
)

// dpkgStatus is dpkg's database of the packages it knows.
const dpkgStatus = "/var/lib/dpkg/status"

// maxDpkgLine is the longest line of the status file that is looked at;
// only the short Package, Version, Architecture and Status lines matter,
// and longer lines (a description's) are skipped.
const maxDpkgLine = 64 << 10

// dpkg reads the installed packages from dpkg's status file: its stanzas
// whose Status is "… ok installed". The same package of a second
// architecture is "name:arch", as dpkg-query names it.
func (rd *reader) dpkg() error {
	f, err := rd.fs.openAs(dpkgStatus, false)
	if err != nil {
		return rd.skip(err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > rd.fs.b.lim.FileSize {
		return &errBudget{fmt.Sprintf("%s is larger than %d bytes", dpkgStatus, rd.fs.b.lim.FileSize)}
	}
	var stanza dpkgStanza
	err = scanLines(rd.fs.reader(f), func(line []byte) error {
		if len(bytes.TrimSpace(line)) == 0 {
			err := rd.addStanza(stanza)
			stanza = dpkgStanza{}
			return err
		}
		stanza.field(line)
		return nil
	})
	if err != nil {
		return rd.skip(err)
	}
	return rd.addStanza(stanza)
}

// dpkgStanza holds the fields of one package's stanza that matter.
type dpkgStanza struct {
	name, version, arch, status string
}

// field takes one line of a stanza.
func (s *dpkgStanza) field(line []byte) {
	name, value, ok := bytes.Cut(line, []byte(":"))
	if !ok || len(name) == 0 || name[0] == ' ' || name[0] == '\t' {
		return // a continuation line
	}
	v := string(bytes.TrimSpace(value))
	switch string(name) {
	case "Package":
		s.name = v
	case "Version":
		s.version = v
	case "Architecture":
		s.arch = v
	case "Status":
		s.status = v
	}
}

// installed reports whether a stanza's package is installed: its Status is
// "want ok installed" (want being install, or hold, …).
func (s dpkgStanza) installed() bool {
	f := bytes.Fields([]byte(s.status))
	return len(f) == 3 && string(f[1]) == "ok" && string(f[2]) == "installed"
}

func (rd *reader) addStanza(s dpkgStanza) error {
	if s.name == "" || !s.installed() {
		return nil
	}
	p := store.Package{Manager: store.ManagerApt, Name: s.name, Version: s.version}
	if rd.seen[key{p.Manager, p.Name}] && s.arch != "" {
		p.Name += ":" + s.arch
	}
	return rd.add(p, dpkgStatus)
}

// scanLines calls fn with each line of r, without its end. A line longer
// than maxDpkgLine is skipped.
func scanLines(r io.Reader, fn func([]byte) error) error {
	br := bufio.NewReaderSize(r, maxDpkgLine)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			for line = nil; errors.Is(err, bufio.ErrBufferFull); {
				_, err = br.ReadSlice('\n')
			}
		}
		if len(line) > 0 {
			if ferr := fn(bytes.TrimRight(line, "\r\n")); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}
