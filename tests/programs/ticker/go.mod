module ticker

go 1.15
