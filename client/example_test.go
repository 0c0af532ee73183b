package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/client"
)

// Submit a run of the demo mapping that `weir dev` creates, wait for it, and
// print its delivery manifest's totals. WEIR_SERVER and WEIR_TOKEN say where
// the server is and who calls it (in this package's tests, TestMain starts a
// real server in-process and sets both).
func ExampleClient_SubmitRun() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	c, err := client.New(os.Getenv("WEIR_SERVER"), os.Getenv("WEIR_TOKEN"))
	if err != nil {
		log.Fatal(err)
	}
	run, err := c.SubmitRun(ctx, client.SubmitRunRequest{
		Mapping: "demo-trades",
		Params:  map[string]string{"business_date": "2026-11-20"},
	})
	var apiErr *client.APIError
	if errors.As(err, &apiErr) && apiErr.Field != "" {
		log.Fatalf("the server refused %s: %s", apiErr.Field, apiErr.Message)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("submitted a run of", run.Mapping)

	final, err := c.WaitRun(ctx, run.ID, 100*time.Millisecond, nil)
	if err != nil {
		log.Fatal(err)
	}
	if final.State != catalog.StateSucceeded {
		log.Fatalf("run %s ended %s: %s", final.ID, final.State, final.Error)
	}
	m, err := c.RunManifest(ctx, final.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("run", final.State)
	fmt.Printf("delivered %d files, %d bytes\n", m.TotalFiles, m.TotalBytes)
	// Output:
	// submitted a run of demo-trades
	// run succeeded
	// delivered 2 files, 49 bytes
}

// Walk every failed run of a mapping, page by page.
func ExampleClient_AllRuns() {
	c, err := client.New(os.Getenv("WEIR_SERVER"), os.Getenv("WEIR_TOKEN"))
	if err != nil {
		log.Fatal(err)
	}
	opts := client.ListRunsOptions{Mapping: "demo-trades", States: []catalog.RunState{catalog.StateFailed}, Limit: 100}
	for run, err := range c.AllRuns(context.Background(), opts) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(run.ID, run.Error)
	}
}
