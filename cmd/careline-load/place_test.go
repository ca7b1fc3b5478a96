package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestPlaceBinaryCopiesExecutable(t *testing.T) {
	src := filepath.Join(t.TempDir(), "careline")
	want := []byte("#!/bin/sh\necho measured\n")
	if err := os.WriteFile(src, want, 0o700); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "bin")
	path, err := placeBinary(dir, src, "careline@abc1234")
	if err != nil {
		t.Fatal(err)
	}
	if path == src || filepath.Dir(path) != dir {
		t.Fatalf("placed at %s, want a new file in %s", path, dir)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("copy holds %q, want %q", got, want)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o100 == 0 {
		t.Fatalf("copy mode %v is not executable", st.Mode())
	}
	// Labels are unique within a run; a second copy under one name would measure one binary twice.
	if _, err = placeBinary(dir, src, "careline@abc1234"); err == nil {
		t.Fatal("a second binary under the same name was placed over the first")
	}
}

func TestPlaceBinaryMissing(t *testing.T) {
	if _, err := placeBinary(t.TempDir(), filepath.Join(t.TempDir(), "absent"), "careline"); err == nil {
		t.Fatal("a missing binary was placed")
	}
}
