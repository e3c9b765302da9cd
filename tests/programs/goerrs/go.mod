module goerrs

go 1.15
