module values

go 1.15
