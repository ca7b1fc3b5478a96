package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// placeBinary copies a binary to be measured into dir and returns the copy's path. Every
// bridge of a run is measured from such a copy: where the file came from changed the numbers.
// A byte-identical `cp` of bin/careline read ~10% more msg/s and ~15 MB less RSS than the
// linker's own output in one invocation (the page cache holds a file the linker wrote
// differently, and the executable's text is mapped from it), which favoured whichever side
// happened to be a copy.
func placeBinary(dir, bin, name string) (string, error) {
	src, err := os.Open(bin)
	if err != nil {
		return "", fmt.Errorf("binary to measure: %w", err)
	}
	defer src.Close()
	if err = os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, strings.NewReplacer("/", "-", "@", "-").Replace(name))
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return "", fmt.Errorf("copying the binary to measure: %w", err)
	}
	if _, err = io.Copy(dst, src); err != nil {
		dst.Close()
		return "", fmt.Errorf("copying %s: %w", bin, err)
	}
	if err = dst.Close(); err != nil {
		return "", fmt.Errorf("copying %s: %w", bin, err)
	}
	return path, nil
}
