package journal

import (
	"fmt"
	"sync"
	"testing"
)

// BenchmarkAppendSync measures durable appends of 128-byte records with 1,
// 8 and 64 concurrent writers, each waiting for its own record.
func BenchmarkAppendSync(b *testing.B) {
	rec := make([]byte, 128)
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			j := open(b, b.TempDir(), Options{})
			defer j.Close()
			b.SetBytes(int64(len(rec)))
			b.ResetTimer()
			var wg sync.WaitGroup
			per := b.N / writers
			extra := b.N % writers
			for w := 0; w < writers; w++ {
				n := per
				if w < extra {
					n++
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < n; i++ {
						if _, err := j.AppendSync(rec); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			st := j.Stats()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(st.Appended)/float64(max(st.Commits, 1)), "records/fsync")
		})
	}
}
