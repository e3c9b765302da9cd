module methods

go 1.15
