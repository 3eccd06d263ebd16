package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/piot-appliance/piot/services/store"
	"github.com/spf13/cobra"
)

func storeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Look after an external store",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(storePrepareCmd())
	return cmd
}

func storePrepareCmd() *cobra.Command {
	var uri, pgURL, sqliteURL string
	cmd := &cobra.Command{
		Use:   "prepare",
		Short: "Index an external FerretDB's backend for PIOT's lookups by _id",
		Long: `Give every collection of the store's database on an external FerretDB v1 the
index on the expression FerretDB filters _id with, which FerretDB itself does
not create: without it every lookup by _id (all of PIOT's) scans the whole
collection. The embedded store does this by itself; MongoDB needs nothing.

It talks to FerretDB's backend directly: pass the --postgresql-url or
--sqlite-url FerretDB runs with. Run it after piot's first start on the
database, and again every day (history adds a collection a day), e.g. from
cron; it is idempotent and safe while piot and FerretDB run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			backend := pgURL
			switch {
			case pgURL != "" && sqliteURL != "":
				return errors.New("give --postgresql-url or --sqlite-url, not both")
			case sqliteURL != "":
				backend = sqliteURL
			case pgURL == "":
				return errors.New("--postgresql-url or --sqlite-url (as FerretDB runs with) is required")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
			defer cancel()
			db := store.DatabaseFromURI(uri)
			colls, err := store.PrepareFerretDB(ctx, backend, db)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "database %s: _id index on %d collections: %s\n", db, len(colls), strings.Join(colls, ", "))
			return nil
		},
	}
	cmd.Flags().StringVar(&uri, "store-uri", os.Getenv("PIOT_STORE_URI"), "the appliance's --store-uri; its path names the database (piot when omitted) [env PIOT_STORE_URI]")
	cmd.Flags().StringVar(&pgURL, "postgresql-url", "", "FerretDB's --postgresql-url (postgres://user:password@host:port/database)")
	cmd.Flags().StringVar(&sqliteURL, "sqlite-url", "", "FerretDB's --sqlite-url (file:/directory/)")
	return cmd
}
