//go:build !linux

package main

import (
	"syscall"
	"time"
)

func procAttr() *syscall.SysProcAttr { return nil }

// procCPU is not measured off Linux.
func procCPU(int) (time.Duration, bool) { return 0, false }

// procIO is not measured off Linux.
func procIO(int) (reads, writes int64, ok bool) { return 0, 0, false }

// procSwitches is not measured off Linux.
func procSwitches(int) (int64, bool) { return 0, false }
