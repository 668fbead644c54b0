package sweep

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// Stages a result records in sweep.jsonl.
const (
	StageBuilt = "built" // passes run, file written, accuracy measured
	StageTimed = "timed" // latency measured too
)

// Result is one point's figures. Numbers carry their units in their names.
type Result struct {
	Hash      string  `json:"hash"` // the Base.Hash it was made under
	ID        string  `json:"id"`
	Ratio     float64 `json:"ratio"` // fraction of units pruned
	Criterion string  `json:"criterion"`
	Quant     string  `json:"quant"`
	// Reference marks the unmodified input model.
	Reference bool   `json:"reference,omitempty"`
	Stage     string `json:"stage,omitempty"`
	Error     string `json:"error,omitempty"`
	File      string `json:"file"` // the ONNX file measured; relative to the sweep folder for points

	Params              int64    `json:"params"`
	MACs                int64    `json:"macs"` // per image
	FileBytes           int64    `json:"file_bytes"`
	WeightBytes         int64    `json:"weight_bytes"` // weights in memory
	PeakActivationBytes int64    `json:"peak_activation_bytes"`
	AccuracyPct         *float64 `json:"accuracy_pct,omitempty"` // top-1, nil without eval data
	EvalImages          int      `json:"eval_images,omitempty"`
	RuntimeMs           float64  `json:"runtime_ms,omitempty"` // median, batch 1, pqvc's runtime
	ORTMs               float64  `json:"ort_ms,omitempty"`     // median, batch 1, ONNX Runtime
	BuildSeconds        float64  `json:"build_seconds"`

	// Frontier membership, computed over the results of one sweep; not
	// stored in sweep.jsonl because it depends on the other points.
	ParetoLatency bool `json:"-"`
	ParetoSize    bool `json:"-"`
}

// Latency is the latency a plot and frontier use: ONNX Runtime's when the
// sweep measured it, else pqvc's runtime's; 0 when neither was measured.
func (r *Result) Latency(useORT bool) float64 {
	if useORT {
		return r.ORTMs
	}
	return r.RuntimeMs
}

// Log is sweep.jsonl: one JSON result per line, appended as points finish.
// A later line for the same hash and id replaces an earlier one.
type Log struct {
	f    *os.File
	last map[[2]string]*Result
}

// OpenLog reads the results already in path (if any) and opens it for
// appending. A malformed line (an interrupted write) is skipped.
func OpenLog(path string) (*Log, error) {
	l := &Log{last: map[[2]string]*Result{}}
	f, err := os.Open(path)
	switch {
	case err == nil:
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
		for sc.Scan() {
			var r Result
			if json.Unmarshal(sc.Bytes(), &r) != nil || r.ID == "" {
				continue
			}
			l.last[[2]string{r.Hash, r.ID}] = &r
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	if l.f, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	return l, nil
}

// Lookup returns the last result recorded for hash and id, or nil. The
// result is a copy: changing it does not change the log.
func (l *Log) Lookup(hash, id string) *Result {
	r := l.last[[2]string{hash, id}]
	if r == nil {
		return nil
	}
	c := *r
	return &c
}

// Append writes r as one line. One Write call per line keeps lines whole
// when the process is killed between points.
func (l *Log) Append(r *Result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := l.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("sweep: writing %s: %w", l.f.Name(), err)
	}
	c := *r
	l.last[[2]string{r.Hash, r.ID}] = &c
	return nil
}

// Close closes the file.
func (l *Log) Close() error { return l.f.Close() }
