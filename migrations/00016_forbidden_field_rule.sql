-- A field the caller's role may not write, sent beside fields it may, is refused on its own as a
-- conflict of rule forbidden_field (docs/protocol.md §5.5), recorded like the others; the rest of
-- the mutation applies.
--
-- The stored results of mutations are pruned past the retention (sync.Engine.Sweep), by when they
-- were applied on the engine's clock (fieldsync_now, as the change log's created_at): a test moves
-- time past the retention without sleeping.

-- +goose Up
ALTER TABLE applied_mutations ALTER COLUMN applied_at SET DEFAULT fieldsync_now();
ALTER TABLE conflicts DROP CONSTRAINT conflicts_rule_check,
    ADD CONSTRAINT conflicts_rule_check CHECK (rule IN ('last_write_wins', 'status_state_machine', 'checklist_item',
                                                        'first_decision_wins', 'delete_wins', 'update_wins',
                                                        'forbidden_field'));

-- +goose Down
ALTER TABLE applied_mutations ALTER COLUMN applied_at SET DEFAULT now();
DELETE FROM conflicts WHERE rule = 'forbidden_field';
ALTER TABLE conflicts DROP CONSTRAINT conflicts_rule_check,
    ADD CONSTRAINT conflicts_rule_check CHECK (rule IN ('last_write_wins', 'status_state_machine', 'checklist_item',
                                                        'first_decision_wins', 'delete_wins', 'update_wins'));
