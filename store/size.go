package store

import (
	"fmt"
	"math"
)

// FormatSize says a number of bytes the way people read sizes: in the
// largest binary unit it reaches, whole when it is whole and with one
// decimal below ten ("3.1 GiB", "5 GiB", "120 MiB", "900 bytes").
func FormatSize(n int64) string {
	units := []string{"KiB", "MiB", "GiB", "TiB"}
	if n < 1<<10 && n > -1<<10 {
		return fmt.Sprintf("%d bytes", n)
	}
	v, unit := float64(n)/(1<<10), units[0]
	for _, u := range units[1:] {
		if math.Abs(v) < 1<<10 {
			break
		}
		v, unit = v/(1<<10), u
	}
	switch {
	case v == math.Trunc(v):
		return fmt.Sprintf("%.0f %s", v, unit)
	case math.Abs(v) < 10:
		return fmt.Sprintf("%.1f %s", v, unit)
	}
	return fmt.Sprintf("%.0f %s", v, unit)
}
