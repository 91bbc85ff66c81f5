package main

import (
	"os"
	"runtime"
	"testing"
	"time"
)

// TestProcCountersCountThisProcess: the per-login syscall and
// context-switch counters read the process's own, and they grow by what it
// does (100 writes are at least 100 write syscalls; sleeping switches out).
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
	r1, w1, _ := procIO(pid)
	s1, _ := procSwitches(pid)
	if w1-w0 < 100 {
		t.Errorf("write syscalls grew by %d over 100 writes", w1-w0)
	}
	if r1 < r0 {
		t.Errorf("read syscalls went back from %d to %d", r0, r1)
	}
	if s1-s0 < 1 {
		t.Errorf("context switches grew by %d over five sleeps", s1-s0)
	}
}
