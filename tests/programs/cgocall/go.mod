module cgocall

go 1.15
