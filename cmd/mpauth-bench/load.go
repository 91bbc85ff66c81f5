package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"
)

// The load generator: closed-loop phases (N connections, each sending its
// next request when the previous answer arrived) and paced phases (requests
// started on a fixed schedule; latency counted from the scheduled start, so
// a stalled server is not hidden by the generator waiting for it). Every
// phase runs a warmup whose results are dropped, then the measured window.

// op performs one request. It returns nil on success, or an error whose text
// is a short, low-cardinality reason (counted per reason in the report).
type op func(ctx context.Context, rng *rand.Rand) error

// phase describes one measurement.
type phase struct {
	conc    int
	warmup  time.Duration
	measure time.Duration
	// rate > 0 makes the phase paced: rate requests/s started on schedule
	// by conc workers.
	rate float64
}

// Result is one phase's figures.
type Result struct {
	Concurrency int     `json:"concurrency"`
	PacedRate   float64 `json:"paced_rate,omitempty"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	// ErrorReasons counts failures by reason (kratos reason or HTTP status).
	ErrorReasons map[string]int `json:"error_reasons,omitempty"`
	Seconds      float64        `json:"seconds"`
	PerSecond    float64        `json:"per_second"`
	P50ms        float64        `json:"p50_ms"`
	P95ms        float64        `json:"p95_ms"`
	P99ms        float64        `json:"p99_ms"`
	MaxMs        float64        `json:"max_ms"`
	// Rounds is how many alternating slices the figures add up (see pair),
	// and SlicePerSecond each slice's rate, in the order they ran.
	Rounds         int       `json:"rounds,omitempty"`
	SlicePerSecond []float64 `json:"slice_per_second,omitempty"`

	lats []time.Duration // successful requests' latencies
}

type sample struct {
	lat time.Duration
	err error
}

// run executes the phase and returns its figures.
func (p phase) run(ctx context.Context, do op) Result {
	start := time.Now()
	measureFrom := start.Add(p.warmup)
	end := measureFrom.Add(p.measure)
	per := make([][]sample, p.conc)
	var wg sync.WaitGroup

	var schedule chan time.Time
	if p.rate > 0 {
		schedule = make(chan time.Time, int(p.rate*(p.warmup+p.measure).Seconds())+16)
		go func() {
			defer close(schedule)
			interval := time.Duration(float64(time.Second) / p.rate)
			for at := start; at.Before(end); at = at.Add(interval) {
				if d := time.Until(at); d > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(d):
					}
				}
				schedule <- at
			}
		}()
	}

	for w := 0; w < p.conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w)+1, uint64(start.UnixNano())))
			var out []sample
			for ctx.Err() == nil {
				var began time.Time
				if schedule != nil {
					at, ok := <-schedule
					if !ok {
						break
					}
					began = at
				} else {
					began = time.Now()
					if !began.Before(end) {
						break
					}
				}
				err := do(ctx, rng)
				if !began.Before(measureFrom) {
					out = append(out, sample{lat: time.Since(began), err: err})
				}
			}
			per[w] = out
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(measureFrom)

	r := Result{Concurrency: p.conc, PacedRate: p.rate, Seconds: elapsed.Seconds()}
	var lats []time.Duration
	for _, out := range per {
		for _, s := range out {
			r.Requests++
			if s.err != nil {
				r.Errors++
				if r.ErrorReasons == nil {
					r.ErrorReasons = map[string]int{}
				}
				r.ErrorReasons[s.err.Error()]++
				continue
			}
			lats = append(lats, s.lat)
		}
	}
	if elapsed > 0 {
		r.PerSecond = float64(r.Requests-r.Errors) / elapsed.Seconds()
	}
	r.lats = lats
	r.P50ms, r.P95ms, r.P99ms, r.MaxMs = percentiles(lats)
	return r
}

// merge adds up results of the same load measured in several slices.
func merge(rs ...Result) Result {
	if len(rs) == 0 {
		return Result{}
	}
	m := Result{Concurrency: rs[0].Concurrency, PacedRate: rs[0].PacedRate, Rounds: len(rs)}
	for _, r := range rs {
		if len(rs) > 1 {
			m.SlicePerSecond = append(m.SlicePerSecond, r.PerSecond)
		}
		m.Requests += r.Requests
		m.Errors += r.Errors
		m.Seconds += r.Seconds
		m.lats = append(m.lats, r.lats...)
		for k, v := range r.ErrorReasons {
			if m.ErrorReasons == nil {
				m.ErrorReasons = map[string]int{}
			}
			m.ErrorReasons[k] += v
		}
	}
	if m.Seconds > 0 {
		m.PerSecond = float64(m.Requests-m.Errors) / m.Seconds
	}
	m.P50ms, m.P95ms, m.P99ms, m.MaxMs = percentiles(m.lats)
	return m
}

// pair measures a against b in alternating slices and adds each side up,
// so that load from elsewhere on a shared machine falls on both alike. The
// order is mirrored from round to round (a b, b a, a b, …): with a b a b the
// database still settling after the phase before (flushing what a closed
// loop at 128 connections dirtied) fell on a's slices every time. The first
// slice warms up as long as the whole phase would; later ones have their
// own shorter warmup.
func pair(ctx context.Context, p phase, rounds int, a, b op) (Result, Result) {
	slice, first, rounds := pairSlices(p, rounds)
	var as, bs []Result
	for i := 0; i < rounds && ctx.Err() == nil; i++ {
		s := slice
		if i == 0 {
			s = first
		}
		if i%2 == 0 {
			as = append(as, s.run(ctx, a))
			bs = append(bs, slice.run(ctx, b))
		} else {
			bs = append(bs, s.run(ctx, b))
			as = append(as, slice.run(ctx, a))
		}
	}
	return merge(as...), merge(bs...)
}

// roundRatios is a's rate over b's in each round of pair(…, a, b): the two
// slices of a round ran back to back, so how far the rounds differ shows
// how much the machine moved the ratio in this run.
func roundRatios(a, b Result) []float64 {
	n := min(len(a.SlicePerSecond), len(b.SlicePerSecond))
	if n == 0 {
		return nil
	}
	out := make([]float64, n)
	for i := range out {
		out[i] = ratio(a.SlicePerSecond[i], b.SlicePerSecond[i])
	}
	return out
}

// pairSlices is how pair cuts p: the slices, the first one (with the whole
// warmup) and the rounds.
func pairSlices(p phase, rounds int) (slice, first phase, n int) {
	n = max(rounds, 1)
	slice = p
	slice.measure = p.measure / time.Duration(n)
	slice.warmup = max(p.warmup/time.Duration(n), 100*time.Millisecond)
	first = slice
	first.warmup = max(p.warmup, slice.warmup)
	return slice, first, n
}

// pairDuration is how long pair(ctx, p, rounds, …) runs.
func pairDuration(p phase, rounds int) time.Duration {
	slice, first, n := pairSlices(p, rounds)
	return first.warmup + first.measure + time.Duration(2*n-1)*(slice.warmup+slice.measure)
}

// percentiles returns p50, p95, p99 and max of lats in milliseconds
// (nearest rank on the sorted samples).
func percentiles(lats []time.Duration) (p50, p95, p99, worst float64) {
	if len(lats) == 0 {
		return 0, 0, 0, 0
	}
	s := slices.Clone(lats)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) float64 {
		i := int(q*float64(len(s))+0.999999) - 1
		i = max(0, min(i, len(s)-1))
		return ms(s[i])
	}
	return at(0.50), at(0.95), at(0.99), ms(s[len(s)-1])
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// newClient is the load generator's HTTP client: keep-alive, with enough
// idle connections for the largest concurrency.
func newClient() *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        2048,
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// post sends a JSON body and returns the status and answer. A transport
// failure is an error; any status is not.
func post(ctx context.Context, c *http.Client, url string, body []byte, authorization string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("transport error")
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("transport error (body)")
	}
	return resp.StatusCode, b, nil
}

// failure names a non-2xx answer by its kratos reason, or its status.
func failure(status int, body []byte) error {
	if i := bytes.Index(body, []byte(`"reason"`)); i >= 0 {
		rest := bytes.TrimLeft(body[i+len(`"reason"`):], " \t\n:")
		if len(rest) > 0 && rest[0] == '"' {
			rest = rest[1:]
			if j := bytes.IndexByte(rest, '"'); j >= 0 && j < 64 {
				return fmt.Errorf("HTTP %d %s", status, rest[:j])
			}
		}
	}
	return fmt.Errorf("HTTP %d", status)
}
