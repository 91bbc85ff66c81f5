//go:build !linux

package main

import (
	"syscall"
	"time"
)

func procAttr() *syscall.SysProcAttr { return nil }

// procCPU is not measured off Linux.
func procCPU(int) (time.Duration, bool) { return 0, false }
