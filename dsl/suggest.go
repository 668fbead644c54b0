package dsl

import (
	"fmt"
	"strings"
)

// hint is the tail of an "unknown word" message: the nearest candidate when
// one is close enough to be a likely typo, otherwise the whole (short) list
// so the user need not look it up.
func hint(word string, cands []string) string {
	if s := suggest(word, cands); s != "" {
		return s
	}
	if len(cands) == 0 || len(cands) > 12 {
		return ""
	}
	return " (one of: " + strings.Join(cands, ", ") + ")"
}

// suggest is `; did you mean "x"?` for the candidate nearest to word, or ""
// when none is near: suggesting "fuse" for "xyzzy" would only mislead.
func suggest(word string, cands []string) string {
	best, bestD := "", -1
	for _, c := range cands {
		d := levenshtein(strings.ToLower(word), c)
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	// Close enough: at most half the longer word's runes differ.
	n := max(len([]rune(word)), len([]rune(best)))
	if bestD < 0 || bestD*2 > n {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// levenshtein is the edit distance between a and b, in runes.
func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
