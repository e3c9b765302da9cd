module detach

go 1.15
