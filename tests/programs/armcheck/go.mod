module armcheck

go 1.15
