package load

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times: 100 on
// every Linux architecture Go supports (the kernel fixes it for userspace).
const clockTicks = 100

// cpuSample is the CPU time used so far by the server (from /proc) and by
// this process, each with the time it was read at.
type cpuSample struct {
	serverAt, toolAt time.Time
	server, tool     time.Duration
	serverOK, toolOK bool
}

// cpuSampler reads CPU times. Under heavy load a goroutine returning from
// a system call can wait seconds for a processor, so each reading is one
// system call (pread of a /proc file opened beforehand, getrusage) with
// its clock reading taken just before it, when the kernel is about to
// look at the counters, not after.
type cpuSampler struct {
	stat *os.File // the server's /proc/PID/stat, nil without a PID
	buf  []byte
	err  error // why the server cannot be sampled
}

func newCPUSampler(pid int) *cpuSampler {
	c := &cpuSampler{buf: make([]byte, 4096)}
	if pid > 0 {
		c.stat, c.err = os.Open(fmt.Sprintf("/proc/%d/stat", pid))
		if c.err != nil {
			c.err = fmt.Errorf("server CPU: %w", c.err)
		}
	}
	return c
}

func (c *cpuSampler) sample() cpuSample {
	var s cpuSample
	if c.stat != nil && c.err == nil {
		s.serverAt = time.Now()
		n, err := c.stat.ReadAt(c.buf, 0)
		if err != nil && !errors.Is(err, io.EOF) {
			c.err = fmt.Errorf("server CPU: %w", err)
		} else if d, err := parseStatCPU(c.buf[:n]); err != nil {
			c.err = err
		} else {
			s.server, s.serverOK = d, true
		}
	}
	s.toolAt = time.Now()
	s.tool, s.toolOK = selfCPU()
	return s
}

func (c *cpuSampler) Close() {
	if c.stat != nil {
		c.stat.Close()
	}
}

// procCPU reads utime+stime of pid from /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("server CPU: %w", err)
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime+stime from the text of /proc/PID/stat.
func parseStatCPU(b []byte) (time.Duration, error) {
	// The command name (field 2) is in parentheses and may hold spaces;
	// the fields after the last ')' start with field 3.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, errors.New("server CPU: unexpected /proc stat format")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("server CPU: unexpected /proc stat format")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, errors.New("server CPU: unexpected /proc stat format")
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// cpuPercent is the CPU used between two samples as a percentage of one
// core (200% is two cores busy).
func cpuPercent(a, b cpuSample, server bool) float64 {
	if server {
		if !a.serverOK || !b.serverOK || !b.serverAt.After(a.serverAt) {
			return 0
		}
		return 100 * float64(b.server-a.server) / float64(b.serverAt.Sub(a.serverAt))
	}
	if !a.toolOK || !b.toolOK || !b.toolAt.After(a.toolAt) {
		return 0
	}
	return 100 * float64(b.tool-a.tool) / float64(b.toolAt.Sub(a.toolAt))
}

// procRSS reads VmRSS (resident now) and VmHWM (peak resident) of pid.
func procRSS(pid int) (rss, peak int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("server RSS: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("server RSS: %s: %w", k, err)
		}
		if k == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
	}
	if rss == 0 {
		return 0, 0, errors.New("server RSS: no VmRSS in /proc status (a kernel thread, or not Linux?)")
	}
	return rss, peak, sc.Err()
}

// metricsRSS scrapes process_resident_memory_bytes from a Prometheus text
// endpoint.
func metricsRSS(ctx context.Context, url string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("metrics: HTTP %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "process_resident_memory_bytes")
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if strings.HasPrefix(rest, "{") {
			_, rest, _ = strings.Cut(rest, "}")
		}
		f := strings.Fields(rest) // value, then an optional timestamp
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, fmt.Errorf("metrics: process_resident_memory_bytes: %w", err)
		}
		return int64(v), nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	return 0, errors.New("metrics: no process_resident_memory_bytes")
}
