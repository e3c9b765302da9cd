module multiret

go 1.15
