package main

import (
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestProcCountersCountThisProcess: the per-login CPU, syscall and
// context-switch counters read the process's own, and they grow by what it
// does (100 writes are at least 100 write syscalls; sleeping switches out;
// spinning for 100 ms of CPU shows as CPU time).
func TestProcCountersCountThisProcess(t *testing.T) {
	pid := os.Getpid()
	f, err := os.Create(t.TempDir() + "/w")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r0, w0, ok := procIO(pid)
	if !ok {
		t.Fatal("procIO: /proc/self/io not read")
	}
	s0, ok := procSwitches(pid)
	if !ok {
		t.Fatal("procSwitches: /proc/self/task not read")
	}
	cpu0, ok := procCPU(pid)
	if !ok {
		t.Fatal("procCPU: /proc/self/stat not read")
	}
	for i := 0; i < 100; i++ {
		if _, err := f.Write([]byte{'x'}); err != nil {
			t.Fatal(err)
		}
	}
	runtime.LockOSThread() // a sleeping locked thread must leave its CPU
	for i := 0; i < 5; i++ {
		time.Sleep(time.Millisecond)
	}
	runtime.UnlockOSThread()
	// CPU time is counted in ticks of 10 ms: spin until the thread's own
	// clock says 100 ms, then the process's must show at least 50.
	runtime.LockOSThread()
	spinUntil := threadCPU() + 100*time.Millisecond
	for threadCPU() < spinUntil {
	}
	runtime.UnlockOSThread()
	cpu1, _ := procCPU(pid)
	r1, w1, _ := procIO(pid)
	s1, _ := procSwitches(pid)
	if w1-w0 < 100 {
		t.Errorf("write syscalls grew by %d over 100 writes", w1-w0)
	}
	if r1 < r0 {
		t.Errorf("read syscalls went back from %d to %d", r0, r1)
	}
	if cpu1-cpu0 < 50*time.Millisecond {
		t.Errorf("CPU time grew by %v over 100 ms of spinning", cpu1-cpu0)
	}
	if s1-s0 < 1 {
		t.Errorf("context switches grew by %d over five sleeps", s1-s0)
	}
}

// threadCPU is the calling thread's CPU time, from the kernel's own clock.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(err)
	}
	return time.Duration(ts.Nano())
}
