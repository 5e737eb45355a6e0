package sync

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
)

// Event is what a hook learns of an applied write: the record before and after, as a device sees
// it, and who wrote it. Task, Claim and Document decode the record into its Go type; the JSON is
// the wire's, so a hook reads exactly what devices are sent.
type Event struct {
	Type   string
	ID     uuid.UUID
	Op     string          // create, update or delete
	Before json.RawMessage // nil for a create
	After  json.RawMessage
	Actor  *fieldsync.Identity
}

// Task is a task as hooks read it. A null id is uuid.Nil.
type Task struct {
	ID                   uuid.UUID  `json:"id"`
	ClaimID              uuid.UUID  `json:"claim_id"`
	BranchID             uuid.UUID  `json:"branch_id"`
	AssigneeID           uuid.UUID  `json:"assignee_id"`
	Kind                 TaskKind   `json:"kind"`
	Title                string     `json:"title"`
	Instructions         string     `json:"instructions"`
	DueAt                *time.Time `json:"due_at"`
	LocationAddress      string     `json:"location_address"`
	CompletionNote       string     `json:"completion_note"`
	CannotCompleteReason string     `json:"cannot_complete_reason"`
	Status               TaskStatus `json:"status"`
	FinishedAt           *time.Time `json:"finished_at"`
	Version              int64      `json:"version"`
}

// Claim is a claim as hooks read it. Amounts are in minor units (cents); nil when not known.
type Claim struct {
	ID            uuid.UUID   `json:"id"`
	Number        string      `json:"number"`
	BranchID      uuid.UUID   `json:"branch_id"`
	CustomerID    uuid.UUID   `json:"customer_id"`
	Kind          ClaimKind   `json:"kind"`
	Hospital      string      `json:"hospital"`
	Status        ClaimStatus `json:"status"`
	AmountClaimed *int64      `json:"amount_claimed"`
	AmountPaid    *int64      `json:"amount_paid"`
	PaidAt        *time.Time  `json:"paid_at"`
	SettledAt     *time.Time  `json:"settled_at"`
	Premium       *int64      `json:"premium"`
	ProcessorID   uuid.UUID   `json:"processor_id"`
	DecisionNote  string      `json:"decision_note"`
	Version       int64       `json:"version"`
}

// Document is a document as hooks read it.
type Document struct {
	ID         uuid.UUID      `json:"id"`
	ClaimID    uuid.UUID      `json:"claim_id"`
	TaskID     uuid.UUID      `json:"task_id"`
	Kind       DocumentKind   `json:"kind"`
	FileName   string         `json:"file_name"`
	Status     DocumentStatus `json:"status"`
	ReviewNote string         `json:"review_note"`
	ReviewerID uuid.UUID      `json:"reviewer_id"`
	UploaderID uuid.UUID      `json:"uploader_id"`
	Version    int64          `json:"version"`
}

// Task decodes a write to a task: the task before it (nil for a create) and after it.
func (ev Event) Task() (before, after *Task, err error) { return decodeChange[Task](ev, TypeTask) }

// Claim decodes a write to a claim: the claim before it (nil for a create) and after it.
func (ev Event) Claim() (before, after *Claim, err error) { return decodeChange[Claim](ev, TypeClaim) }

// Document decodes a write to a document: the document before it (nil for a create) and after it.
func (ev Event) Document() (before, after *Document, err error) {
	return decodeChange[Document](ev, TypeDocument)
}

func decodeChange[T any](ev Event, typ string) (before, after *T, err error) {
	if ev.Type != typ {
		return nil, nil, fmt.Errorf("a %s event read as a %s", ev.Type, typ)
	}
	if ev.Before != nil {
		before = new(T)
		if err := json.Unmarshal(ev.Before, before); err != nil {
			return nil, nil, fmt.Errorf("decode %s %s before the write: %w", typ, ev.ID, err)
		}
	}
	after = new(T)
	if err := json.Unmarshal(ev.After, after); err != nil {
		return nil, nil, fmt.Errorf("decode %s %s: %w", typ, ev.ID, err)
	}
	return before, after, nil
}
