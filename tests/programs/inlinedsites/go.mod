module inlinedsites

go 1.19
