package core

import (
	"context"
	"fmt"
	"io"
	"time"

	"go.mongodb.org/mongo-driver/bson"
)

// BackupHeader describes a backup in its first line.
type BackupHeader struct {
	// Format tags the file, so that a restore refuses anything else.
	Format  string
	Version string // of the appliance that wrote it
	Created time.Time
}

// Backup writes every collection of the store to w (admins only): users
// with their password hashes, orgs, things, and what other services keep
// beside them (alarms, history). The store restores it at start, before
// anything loads it into memory. It returns how many collections and
// documents it wrote.
func (c *Core) Backup(ctx context.Context, a Actor, w io.Writer, h BackupHeader) (colls, docs int, err error) {
	if err := AuthorizeAdmin(a, ActBackup); err != nil {
		return 0, 0, err
	}
	// Thing state waits in memory for the ingest's next flush; the backup
	// is to hold it as it is now.
	if _, err := c.FlushState(ctx); err != nil {
		return 0, 0, fmt.Errorf("core: backup: %w", err)
	}
	meta := bson.D{
		{Key: "version", Value: h.Version},
		{Key: "created", Value: h.Created.UTC().Format(time.RFC3339)},
	}
	colls, docs, err = c.st.Export(ctx, w, h.Format, meta)
	if err == nil {
		c.audit(ctx, a, "backup", fmt.Sprintf("%d collections, %d documents", colls, docs))
	}
	return colls, docs, err
}
