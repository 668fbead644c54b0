package measure

import "fmt"

// Count formats n with a k/M/G prefix and unit ("12.3 k", "9.267 MB"), as
// reports and sweep tables print counts and sizes.
func Count(n int64, unit string) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.3f G%s", float64(n)/1e9, unit)
	case n >= 1e6:
		return fmt.Sprintf("%.3f M%s", float64(n)/1e6, unit)
	case n >= 1e3:
		return fmt.Sprintf("%.1f k%s", float64(n)/1e3, unit)
	}
	if unit == "" {
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("%d %s", n, unit)
}
