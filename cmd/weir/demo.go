package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

	"github.com/weirdata/weir/catalog"
)

// The demo data set: trades of DemoSymbols symbols on the business days from
// DemoFirstDate to DemoLastDate, one CSV file per symbol and day.
var (
	DemoDates   = []string{"2026-11-09", "2026-11-10", "2026-11-11", "2026-11-12", "2026-11-13", "2026-11-16", "2026-11-17", "2026-11-18", "2026-11-19", "2026-11-20"}
	DemoSymbols = []string{"AAPL", "MSFT", "AMZN", "GOOG", "META", "NVDA", "TSLA", "JPM", "V", "JNJ",
		"WMT", "PG", "MA", "XOM", "HD", "CVX", "KO", "PEP", "ABBV", "MRK",
		"COST", "AVGO", "ORCL", "NFLX", "ADBE", "CRM", "INTC", "AMD", "CSCO", "IBM"}
)

// seedDemo creates the demo systems, mapping and files when they are missing.
func seedDemo(ctx context.Context, store *catalog.Store, dataDir, region string, log *slog.Logger) error {
	src, dst := filepath.Join(dataDir, DemoSourceName), filepath.Join(dataDir, DemoTargetName)
	for _, sys := range []*catalog.System{
		{Name: DemoSourceName, Kind: catalog.KindFS, Region: region, Settings: catalog.NewJSON(map[string]string{"root": src})},
		{Name: DemoTargetName, Kind: catalog.KindFS, Region: region, Settings: catalog.NewJSON(map[string]string{"root": dst})},
	} {
		if err := os.MkdirAll(sys.Settings.V["root"], 0o755); err != nil {
			return fmt.Errorf("create demo directory: %w", err)
		}
		if _, err := store.GetSystem(ctx, sys.Name); errors.Is(err, catalog.ErrNotFound) {
			if err := store.CreateSystem(ctx, sys); err != nil {
				return fmt.Errorf("create demo system: %w", err)
			}
		} else if err != nil {
			return err
		}
	}
	if _, err := store.GetMapping(ctx, DemoMappingName); errors.Is(err, catalog.ErrNotFound) {
		m := &catalog.Mapping{
			Name:        DemoMappingName,
			Description: "Demo: copy one business day of trade files from demo-src to demo-dst",
			Source:      catalog.NewJSON(catalog.Endpoint{System: DemoSourceName, Path: "trades/{business_date}"}),
			Target:      catalog.NewJSON(catalog.Endpoint{System: DemoTargetName, Path: "trades/{business_date}"}),
			Params: catalog.NewJSON([]catalog.ParamSpec{{Name: "business_date", Type: catalog.ParamDate, Required: true,
				Window: &catalog.DateWindow{Min: DemoDates[0]}}}),
			Enabled:   true,
			CreatedBy: AdminUserName,
		}
		if err := store.PutMapping(ctx, m); err != nil {
			return fmt.Errorf("create demo mapping: %w", err)
		}
	} else if err != nil {
		return err
	}
	n, bytes, err := writeDemoFiles(src)
	if err != nil {
		return err
	}
	if n > 0 {
		log.Info("demo data written", "files", n, "bytes", bytes, "dir", src)
	}
	return nil
}

// writeDemoFiles writes the demo CSV files that do not exist yet. Sizes vary
// from a few hundred bytes to about a megabyte; the content is deterministic.
func writeDemoFiles(root string) (files int, bytes int64, err error) {
	rng := rand.New(rand.NewPCG(20261120, 1))
	for _, date := range DemoDates {
		dir := filepath.Join(root, "trades", date)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return files, bytes, err
		}
		for i, sym := range DemoSymbols {
			rows := int(20 * math.Pow(2, rng.Float64()*9.5))
			seed := rng.Uint64()
			path := filepath.Join(dir, sym+".csv")
			if _, err := os.Stat(path); err == nil {
				continue
			}
			n, err := writeTradeFile(path, date, sym, i, rows, seed)
			if err != nil {
				return files, bytes, err
			}
			files++
			bytes += n
		}
	}
	return files, bytes, nil
}

func writeTradeFile(path, date, sym string, symIdx, rows int, seed uint64) (int64, error) {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return 0, err
	}
	rng := rand.New(rand.NewPCG(seed, uint64(symIdx)))
	w := bufio.NewWriterSize(f, 64<<10)
	w.WriteString("trade_id,symbol,business_date,trade_time,side,quantity,price,currency,venue\n")
	venues := []string{"XNAS", "XNYS", "ARCX", "BATS", "IEXG"}
	price := 20 + rng.Float64()*480
	buf := make([]byte, 0, 128)
	for r := 0; r < rows; r++ {
		price *= 1 + (rng.Float64()-0.5)/200
		sec := 34200 + r*23400/rows
		buf = buf[:0]
		buf = append(buf, date[:4]...)
		buf = append(buf, date[5:7]...)
		buf = append(buf, date[8:]...)
		buf = append(buf, '-')
		buf = append(buf, sym...)
		buf = append(buf, '-')
		buf = strconv.AppendInt(buf, int64(r+1), 10)
		buf = append(buf, ',')
		buf = append(buf, sym...)
		buf = append(buf, ',')
		buf = append(buf, date...)
		buf = append(buf, fmt.Sprintf(",%sT%02d:%02d:%02d-05:00,", date, sec/3600, sec/60%60, sec%60)...)
		if rng.IntN(2) == 0 {
			buf = append(buf, "BUY,"...)
		} else {
			buf = append(buf, "SELL,"...)
		}
		buf = strconv.AppendInt(buf, int64(1+rng.IntN(100))*100, 10)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, price, 'f', 2, 64)
		buf = append(buf, ",USD,"...)
		buf = append(buf, venues[rng.IntN(len(venues))]...)
		buf = append(buf, '\n')
		w.Write(buf)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	return st.Size(), os.Rename(tmp, path)
}
