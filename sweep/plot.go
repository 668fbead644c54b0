package sweep

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Colours per quantization mode and glyphs per criterion: colour carries
// the mode because it moves points furthest (size and latency), shape the
// criterion, so both read at once.
var (
	quantColors = map[string]color.Color{
		QuantNone:        color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
		QuantFP16:        color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
		QuantInt8Dynamic: color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
		QuantInt8Static:  color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	}
	glyphs         = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.PyramidGlyph{}, draw.BoxGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{}}
	frontierColor  = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	referenceColor = color.Black
)

// WritePlots draws accuracy against latency and against file size, each
// with its Pareto frontier and the original model marked, as PNG files in
// dir. A plot with no point to draw (no accuracy measured, say) is skipped.
func WritePlots(dir string, rs []*Result) ([]string, error) {
	acc, lat, size := axes(rs)
	latName := "pqvc runtime"
	if UseORT(rs) {
		latName = "ONNX Runtime"
	}
	kibs := make([]float64, len(size))
	for i, s := range size {
		kibs[i] = s / 1024
	}
	var out []string
	for _, pl := range []struct {
		file, title, xlabel string
		x                   []float64
	}{
		{LatencyPlotFile, "Accuracy against latency", "latency in " + latName + ", batch 1, 1 thread (ms)", lat},
		{SizePlotFile, "Accuracy against model size", "ONNX file size (KiB)", kibs},
	} {
		p, err := scatterPlot(rs, acc, pl.x, pl.title, pl.xlabel)
		if err != nil {
			return nil, fmt.Errorf("sweep: plotting %s: %w", pl.file, err)
		}
		if p == nil {
			continue
		}
		path := filepath.Join(dir, pl.file)
		if err := p.Save(7*vg.Inch, 5*vg.Inch, path); err != nil {
			return nil, fmt.Errorf("sweep: writing %s: %w", path, err)
		}
		out = append(out, path)
	}
	return out, nil
}

// scatterPlot builds one plot: y accuracy, x cost. It returns nil when no
// point has both figures.
func scatterPlot(rs []*Result, acc, x []float64, title, xlabel string) (*plot.Plot, error) {
	ok := func(i int) bool { return !math.IsNaN(acc[i]) && !math.IsNaN(x[i]) }
	n := 0
	for i := range rs {
		if ok(i) {
			n++
		}
	}
	if n == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel
	p.Y.Label.Text = "top-1 accuracy (%)"
	p.Add(plotter.NewGrid())

	var crits, quants []string
	for _, r := range rs {
		if r.Reference {
			continue
		}
		if !slicesContains(crits, r.Criterion) {
			crits = append(crits, r.Criterion)
		}
		if !slicesContains(quants, r.Quant) {
			quants = append(quants, r.Quant)
		}
	}
	glyphOf := func(crit string) draw.GlyphDrawer {
		for i, c := range crits {
			if c == crit {
				return glyphs[i%len(glyphs)]
			}
		}
		return glyphs[0]
	}
	colorOf := func(q string) color.Color {
		if c, ok := quantColors[q]; ok {
			return c
		}
		return color.Gray{Y: 0x80}
	}

	// The frontier first, so the points are drawn over it.
	on := Frontier(acc, x)
	var line plotter.XYs
	for _, i := range FrontierOrder(acc, x, on) {
		line = append(line, plotter.XY{X: x[i], Y: acc[i]})
	}
	if len(line) > 0 {
		l, err := plotter.NewLine(line)
		if err != nil {
			return nil, err
		}
		l.Color, l.Width = frontierColor, vg.Points(1.5)
		l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		p.Add(l)
		// Rings around the frontier points tell them apart where the
		// line is short or degenerate (a single frontier point).
		rings, err := plotter.NewScatter(line)
		if err != nil {
			return nil, err
		}
		rings.GlyphStyle = draw.GlyphStyle{Color: frontierColor, Radius: vg.Points(7), Shape: draw.RingGlyph{}}
		p.Add(rings)
		p.Legend.Add("Pareto frontier", l, rings)
	}

	for _, q := range quants {
		var xys plotter.XYs
		var styles []draw.GlyphStyle
		for i, r := range rs {
			if r.Reference || r.Quant != q || !ok(i) {
				continue
			}
			xys = append(xys, plotter.XY{X: x[i], Y: acc[i]})
			st := draw.GlyphStyle{Color: colorOf(q), Radius: vg.Points(3.5), Shape: glyphOf(r.Criterion)}
			styles = append(styles, st)
		}
		if len(xys) == 0 {
			continue
		}
		s, err := plotter.NewScatter(xys)
		if err != nil {
			return nil, err
		}
		s.GlyphStyleFunc = func(i int) draw.GlyphStyle { return styles[i] }
		p.Add(s)
		p.Legend.Add("quant "+q, legendGlyph(colorOf(q), draw.CircleGlyph{}))
	}
	if len(crits) > 1 || len(crits) == 1 && crits[0] != NoCriterion {
		for _, c := range crits {
			p.Legend.Add("criterion "+c, legendGlyph(color.Gray{Y: 0x50}, glyphOf(c)))
		}
	}

	for i, r := range rs {
		if !r.Reference || !ok(i) {
			continue
		}
		pt := plotter.XYs{{X: x[i], Y: acc[i]}}
		s, err := plotter.NewScatter(pt)
		if err != nil {
			return nil, err
		}
		s.GlyphStyle = draw.GlyphStyle{Color: referenceColor, Radius: vg.Points(7), Shape: draw.RingGlyph{}}
		p.Add(s)
		p.Legend.Add("original model", s)
		lb, err := plotter.NewLabels(plotter.XYLabels{XYs: pt, Labels: []string{"original"}})
		if err != nil {
			return nil, err
		}
		lb.Offset = vg.Point{X: vg.Points(-12), Y: vg.Points(9)} // above the ring, clear of nearby points
		p.Add(lb)
	}
	padRange(&p.X.Min, &p.X.Max)
	padRange(&p.Y.Min, &p.Y.Max)
	// The legend goes top right, in room made for it to the right of the
	// data: good points sit top left (accurate and cheap) and the worst
	// bottom right, so no corner inside the data is reliably empty.
	p.X.Max += 0.45 * (p.X.Max - p.X.Min)
	p.Legend.Top, p.Legend.Left = true, false
	return p, nil
}

// legendGlyph is a legend thumbnail with the given style; it is never
// added to the plot itself.
func legendGlyph(c color.Color, shape draw.GlyphDrawer) plot.Thumbnailer {
	s, _ := plotter.NewScatter(plotter.XYs{{}}) // one point cannot fail
	s.GlyphStyle = draw.GlyphStyle{Color: c, Radius: vg.Points(3.5), Shape: shape}
	return s
}

// padRange widens an axis by 5% on each side (or by 1 when it is a single
// value) so glyphs at the edges are not clipped.
func padRange(lo, hi *float64) {
	d := *hi - *lo
	if d <= 0 {
		d = math.Max(math.Abs(*hi)*0.1, 1)
	}
	*lo -= 0.05 * d
	*hi += 0.05 * d
}
