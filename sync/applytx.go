package sync

import (
	"context"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ApplyTx applies one mutation like Command, but inside the caller's transaction, so that the
// write commits or rolls back together with the caller's own (the upload server marks a document
// uploaded and inserts its processing job in one transaction). An update or delete without a base
// version is taken against the record as it is now. A rejection, or a change the rules refused
// (a conflict the server's value won), is returned as an *fieldsync.Error; the caller should then
// roll back.
func (e *Engine) ApplyTx(ctx context.Context, tx pgx.Tx, id *fieldsync.Identity, m Mutation) (Result, error) {
	if m.ID == uuid.Nil {
		m.ID = uuid.Must(uuid.NewV7())
	}
	if err := baseOnCurrent(ctx, tx, &m); err != nil {
		return Result{}, err
	}
	r, err := e.apply(ctx, tx, id, &m)
	if err != nil {
		return r, err
	}
	if r.Error != nil {
		return r, &fieldsync.Error{Kind: fieldsync.ECONFLICT, Code: r.Error.Code, Message: r.Error.Message, Details: r.Error.Details}
	}
	if r.Status == StatusConflict {
		return r, fieldsync.Errorf(fieldsync.ECONFLICT, "conflict", "The %s changed in a way that does not allow this write.", m.Type)
	}
	return r, nil
}
