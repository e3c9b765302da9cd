module latency

go 1.15
