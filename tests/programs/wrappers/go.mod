module wrappers

go 1.15
