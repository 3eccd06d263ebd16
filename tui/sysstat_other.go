//go:build !linux

package tui

func diskUsage(string) (used, total uint64, ok bool) { return 0, 0, false }

func memoryUsage() (used, total uint64, ok bool) { return 0, 0, false }
