// Command healthcheck is the container health probe of distq's image: the
// final image has no shell and no curl, so docker-compose's healthcheck runs
// this instead. It GETs the URL given as its only argument and exits 0 on a
// 2xx answer within two seconds, 1 otherwise.
//
// It is its own module so that the service's go.mod stays as it is.
package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: healthcheck URL")
		os.Exit(2)
	}
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		os.Exit(1)
	}
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fmt.Fprintln(os.Stderr, "healthcheck:", os.Args[1], "answered", resp.Status)
		os.Exit(1)
	}
}
