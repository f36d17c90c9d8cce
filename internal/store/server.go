package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/llmfence/llmfence/internal/service"
)

// ServerStore is a Store that also keeps what `llmfence serve` needs: the
// inventory, its workflow and change feed, users and sessions, schedules
// and alerts. Every store Open returns implements it.
type ServerStore interface {
	Store
	InventoryStore
	ShardStore
	UserStore
	ScheduleStore
	AlertStore
	PathStore
	DatascanStore
	AbuseStore
	ProbeStore
	RecordEvent(ctx context.Context, tx *sql.Tx, ev Event) (Event, error)
	ListServices(ctx context.Context, q ServiceQuery) ([]InvService, bool, error)
	GetService(ctx context.Context, id int64) (InvService, service.Service, error)
	ListFindings(ctx context.Context, q FindingQuery) ([]InvFinding, bool, error)
	GetFinding(ctx context.Context, id int64) (InvFinding, error)
	FindingByFP(ctx context.Context, fp string) (InvFinding, error)
	Events(ctx context.Context, cursor, serviceID int64, limit int) ([]Event, int64, error)
	Counts(ctx context.Context) (map[string]int64, error)
	Recount(ctx context.Context) error
	Acknowledge(ctx context.Context, id int64, actor Actor, note string, inTx TxHook) error
	RequestAcceptance(ctx context.Context, id int64, actor Actor, reason string, until time.Time, pol InventoryPolicy, inTx TxHook) error
	ApproveAcceptance(ctx context.Context, id int64, approver Actor, inTx TxHook) error
	RejectAcceptance(ctx context.Context, id int64, actor Actor, inTx TxHook) error
	SetServiceTags(ctx context.Context, id int64, tags []string, actor Actor) error
	SnoozeService(ctx context.Context, id int64, until time.Time, actor Actor) error
	Maintain(ctx context.Context, pol InventoryPolicy, inTx TxHook) (MaintainResult, error)
	// DB is the database handle, for the job engine that shares it (River
	// keeps its tables in the same database). Kind says which back end.
	DB() *sql.DB
	Kind() Kind
}

// TxHook runs inside a store transaction before it commits (enqueue jobs
// that must exist if and only if the change does).
type TxHook = func(ctx context.Context, tx *sql.Tx, events []Event) error

// OpenServer opens a store as a ServerStore.
func OpenServer(ctx context.Context, dsn string, opts Options) (ServerStore, error) {
	s, err := OpenWith(ctx, dsn, opts)
	if err != nil {
		return nil, err
	}
	ss, ok := s.(ServerStore)
	if !ok {
		s.Close()
		return nil, fmt.Errorf("store %T does not keep the server's tables", s)
	}
	return ss, nil
}

func (s *sqlStore) DB() *sql.DB { return s.db }
func (s *sqlStore) Kind() Kind  { return s.d.kind }

// OpenSQLiteConn opens a second handle on a SQLite store's file, with one
// connection and the store's settings, for a job engine that keeps its
// tables in the same file.
func OpenSQLiteConn(ctx context.Context, st ServerStore) (*sql.DB, error) {
	s, ok := st.(*sqlStore)
	if !ok || s.d.kind != KindSQLite {
		return nil, fmt.Errorf("not a SQLite store: %w", ErrBadInput)
	}
	if s.where == ":memory:" {
		return nil, fmt.Errorf("an in-memory store cannot be shared with the job engine: %w", ErrBadInput)
	}
	db, err := sql.Open("sqlite", s.where+"?"+sqliteParams)
	if err != nil {
		return nil, fmt.Errorf("cannot open store at %s: %w", s.where, err)
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("cannot open store at %s: %w", s.where, err)
	}
	return db, nil
}
