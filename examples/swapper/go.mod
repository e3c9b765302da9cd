module swapper

go 1.15
