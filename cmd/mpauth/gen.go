package main

//go:generate go run -mod=mod github.com/google/wire/cmd/wire
