package builtin

import (
	"testing"

	"github.com/pqvc/pqvc/passes"
)

// TestOrderingNamesRegisteredPasses checks the ordering table against the
// built-in registry: a rule about a pass that does not exist is a typo.
func TestOrderingNamesRegisteredPasses(t *testing.T) {
	for _, r := range passes.Ordering {
		for _, name := range []string{r.First, r.Then} {
			if passes.Lookup(name) == nil {
				t.Errorf("ordering rule %s before %s: no pass %q is registered", r.First, r.Then, name)
			}
		}
	}
}
