module hidden

go 1.18
