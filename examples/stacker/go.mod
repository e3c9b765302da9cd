module stacker

go 1.15
