module handlererrors

go 1.15
