module github.com/distq/distq/deployments/docker/healthcheck

go 1.26
