module busy

go 1.15
