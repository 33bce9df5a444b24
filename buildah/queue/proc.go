package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// This file finds, stops and recognises worker processes through /proc.

// KillTree kills root, its process group and every descendant of root, also
// those that left the group or the session (a RUN step's processes do, and
// may live in other namespaces). Everything is stopped first, round after
// round until no new descendant appears, so that nothing can fork away while
// the tree is being walked; then everything is killed. It returns the pids
// it signalled. It ends the local runner's workers, and the pods of the
// test kubelet (kubetest), where it stands in for the cgroup a container
// runtime kills.
func KillTree(root int, signalRoot func(syscall.Signal) error) []int {
	signalRoot(syscall.SIGSTOP)
	syscall.Kill(-root, syscall.SIGSTOP)
	stopped := map[int]bool{}
	for range 50 {
		fresh := 0
		for _, pid := range descendants(root) {
			if !stopped[pid] {
				stopped[pid] = true
				syscall.Kill(pid, syscall.SIGSTOP)
				fresh++
			}
		}
		if fresh == 0 {
			break
		}
	}
	syscall.Kill(-root, syscall.SIGKILL)
	signalRoot(syscall.SIGKILL)
	pids := []int{root}
	for pid := range stopped {
		syscall.Kill(pid, syscall.SIGKILL)
		pids = append(pids, pid)
	}
	return pids
}

// descendants lists every process whose chain of parents leads to root.
func descendants(root int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readProcStat(pid); err == nil {
			children[st.ppid] = append(children[st.ppid], pid)
		}
	}
	var out []int
	queue := children[root]
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		out = append(out, pid)
		queue = append(queue, children[pid]...)
	}
	return out
}

// waitGone waits until none of pids is alive (a zombie counts as gone), or
// until ctx ends.
func waitGone(ctx context.Context, pids []int) {
	for {
		alive := slices.ContainsFunc(pids, func(pid int) bool {
			st, err := readProcStat(pid)
			return err == nil && st.state != 'Z'
		})
		if !alive {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// procStat is what this file needs of /proc/PID/stat.
type procStat struct {
	state byte
	ppid  int
	start uint64 // clock ticks after boot: with the pid, names one process
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name (field 2) may hold spaces and parentheses; the
	// fields after its closing parenthesis are plain.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ppid, err1 := strconv.Atoi(f[1])
	start, err2 := strconv.ParseUint(f[19], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return procStat{}, err
	}
	return procStat{state: f[0][0], ppid: ppid, start: start}, nil
}

// pidFile is what a LocalRunner records of a worker, to find it and what it
// leaves behind after a restart of the server.
type pidFile struct {
	PID    int    `json:"pid"`
	Start  uint64 `json:"start"`
	TmpDir string `json:"tmpDir"`
}

// writePidFile records a worker's pid, start time and temporary folder.
func writePidFile(path string, pid int, tmpDir string) error {
	st, err := readProcStat(pid)
	if err != nil {
		return err
	}
	data, err := json.Marshal(pidFile{PID: pid, Start: st.start, TmpDir: tmpDir})
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

func readPidFile(path string) (pid int, start uint64, tmpDir string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, "", err
	}
	var f pidFile
	if err := json.Unmarshal(b, &f); err != nil {
		return 0, 0, "", fmt.Errorf("reading %s: %w", path, err)
	}
	return f.PID, f.Start, f.TmpDir, nil
}
