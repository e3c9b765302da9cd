module signature

go 1.15
