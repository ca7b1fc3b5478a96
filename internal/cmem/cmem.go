// Package cmem tunes the C heap SQLite allocates from (the C library's malloc, through cgo).
//
// Inside a transaction, SQLite gives every statement that changes several rows (a multi-row
// INSERT or upsert, an UPDATE … WHERE id IN (…)) a statement journal whose first block is
// 64 KiB, and frees it when the statement ends. glibc hands the free top of a thread's heap
// back to the kernel (madvise) once more than 128 KiB of it is free, so the next such
// statement faulted the pages in again, and each hand-back flushed the TLB of every core
// running careline. The inbox finisher runs several such statements a batch: its team inbox
// upsert took 2× the CPU for it (BENCHMARKS.md, "SQLite's C heap").
package cmem

// keepFreed is how much free memory at the top of a heap glibc keeps rather than handing
// back: more than the journal's block and the page caches of the temporary tables a statement
// opens and closes, little beside careline's memory even for every arena in use.
const keepFreed = 1 << 20
