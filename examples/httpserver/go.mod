module httpserver

go 1.15
