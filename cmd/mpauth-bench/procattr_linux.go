package main

import "syscall"

// procAttr makes a subprocess die with the benchmark, even when the
// benchmark is killed.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
