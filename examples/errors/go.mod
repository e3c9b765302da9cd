module errorsdemo

go 1.15
