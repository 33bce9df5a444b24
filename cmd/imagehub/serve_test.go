package main

import "testing"

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"50MiB", 50 << 20, true},
		{"512KiB", 512 << 10, true},
		{"1GiB", 1 << 30, true},
		{" 2 MiB ", 2 << 20, true},
		{"1048576", 1 << 20, true},
		{"50MB", 0, false},
		{"-1KiB", 0, false},
		{"", 0, false},
		{"9999999999GiB", 0, false},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseServeFlagsMaxLogSize(t *testing.T) {
	c, err := parseServeFlags(nil)
	if err != nil || c.maxLogSize != 50<<20 {
		t.Errorf("default: %d, %v; want 50 MiB", c.maxLogSize, err)
	}
	t.Setenv("IMAGEHUB_MAX_LOG_SIZE", "8MiB")
	if c, err = parseServeFlags(nil); err != nil || c.maxLogSize != 8<<20 {
		t.Errorf("from IMAGEHUB_MAX_LOG_SIZE: %d, %v; want 8 MiB", c.maxLogSize, err)
	}
	if c, err = parseServeFlags([]string{"--max-log-size", "1GiB"}); err != nil || c.maxLogSize != 1<<30 {
		t.Errorf("flag: %d, %v; want 1 GiB", c.maxLogSize, err)
	}
	for _, bad := range []string{"lots", "10"} {
		if _, err := parseServeFlags([]string{"--max-log-size", bad}); err == nil {
			t.Errorf("--max-log-size %s accepted", bad)
		}
	}
}

func TestParseServeFlagsGroupBuildLimit(t *testing.T) {
	if c, err := parseServeFlags(nil); err != nil || c.groupBuildLimit != 2 {
		t.Errorf("default: %d, %v; want 2", c.groupBuildLimit, err)
	}
	t.Setenv("IMAGEHUB_GROUP_BUILD_LIMIT", "0")
	if c, err := parseServeFlags(nil); err != nil || c.groupBuildLimit != 0 {
		t.Errorf("from IMAGEHUB_GROUP_BUILD_LIMIT: %d, %v; want 0", c.groupBuildLimit, err)
	}
	if _, err := parseServeFlags([]string{"--group-build-limit", "-1"}); err == nil {
		t.Error("--group-build-limit -1 accepted")
	}
}

func TestParseServeFlagsLogViewers(t *testing.T) {
	c, err := parseServeFlags(nil)
	if err != nil || c.viewersPerBuild != 20 || c.viewersPerUser != 10 {
		t.Errorf("defaults: %d per build, %d per user, %v; want 20 and 10", c.viewersPerBuild, c.viewersPerUser, err)
	}
	t.Setenv("IMAGEHUB_LOG_VIEWERS_PER_USER", "3")
	if c, err = parseServeFlags([]string{"--log-viewers-per-build", "5"}); err != nil || c.viewersPerBuild != 5 || c.viewersPerUser != 3 {
		t.Errorf("set: %d per build, %d per user, %v; want 5 and 3", c.viewersPerBuild, c.viewersPerUser, err)
	}
	if _, err := parseServeFlags([]string{"--log-viewers-per-build", "0"}); err == nil {
		t.Error("--log-viewers-per-build 0 accepted")
	}
}
