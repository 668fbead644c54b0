package search

import "github.com/pqvc/pqvc/dsl"

// RenderForTest renders the recipe the search would write for c.
func RenderForTest(base *dsl.Recipe, quant string, c Config) (string, error) {
	t, err := newTemplate(base, quant)
	if err != nil {
		return "", err
	}
	return t.recipe(c, base.Model, base.Calib, base.Eval), nil
}
