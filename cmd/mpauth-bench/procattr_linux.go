package main

import (
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// procAttr makes a subprocess die with the benchmark, even when the
// benchmark is killed.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }

// procCPU is the CPU time (user + system) process pid has used so far.
func procCPU(pid int) (time.Duration, bool) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, false
	}
	st, err := p.Stat()
	if err != nil {
		return 0, false
	}
	return time.Duration(st.CPUTime() * float64(time.Second)), true
}

// procIO is the number of read and write system calls process pid (all its
// threads) has made so far: /proc/PID/io's syscr and syscw. A socket's
// every read and write is one, so they tell a login's round trips and
// flushes apart from its CPU time.
func procIO(pid int) (reads, writes int64, ok bool) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, 0, false
	}
	io, err := p.IO()
	if err != nil {
		return 0, 0, false
	}
	return int64(io.SyscR), int64(io.SyscW), true
}

// procSwitches is the number of context switches, voluntary and not, that
// process pid's threads have made so far (the sum of their
// /proc/PID/task/TID/status): a goroutine handed from one thread to
// another, or a thread put to sleep on a futex, is one.
func procSwitches(pid int) (int64, bool) {
	threads, err := procfs.AllThreads(pid)
	if err != nil {
		return 0, false
	}
	var total int64
	for _, t := range threads {
		st, err := t.NewStatus()
		if err != nil {
			continue // the thread has exited
		}
		total += int64(st.VoluntaryCtxtSwitches + st.NonVoluntaryCtxtSwitches)
	}
	return total, true
}
