package store_test

import (
	"testing"

	"imagehub/store"
)

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 bytes", 900: "900 bytes", 1 << 10: "1 KiB", 1536: "1.5 KiB", 5 << 30: "5 GiB",
		3328599654: "3.1 GiB", 120 << 20: "120 MiB", 123456789: "118 MiB", 20 << 40: "20 TiB",
	} {
		if got := store.FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
