module inlined

go 1.15
